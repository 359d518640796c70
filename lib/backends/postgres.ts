/** PostgreSQL through `npm:postgres`. */
import postgres from "postgres";
import type { BackendProbe } from "../backend.ts";

export type Sql = postgres.Sql<Record<string, unknown>>;
export type ReservedSql = postgres.ReservedSql<Record<string, unknown>>;

export interface PostgresOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Seconds to wait for a connection (default 3: under the 5 s actor call timeout). */
  connectTimeout?: number;
}

/**
 * A connection pool. `max_pipeline: 1`: with the default of 100 pipelined queries per
 * connection throughput collapsed under concurrency on our machines (porsager/postgres#747).
 * The `postgresql+asyncpg://` form of the seed's template is accepted.
 */
export function createPostgres(url: string, opts: PostgresOptions = {}): Sql {
  return postgres(url.replace(/^postgresql\+asyncpg:/, "postgresql:"), {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeout ?? 3,
    // The default reconnect backoff grows to 20 s and is shared by the pool: during an
    // outage every new query first waited seconds just to try connecting (→ 504s).
    backoff: () => 0.25,
    max_pipeline: 1,
    idle_timeout: 60,
    onnotice: () => {},
  } as postgres.Options<Record<string, never>>);
}

export function postgresProbe(sql: Sql): BackendProbe {
  return {
    name: "storage",
    kind: "postgres",
    async check() {
      await sql`SELECT 1 AS ok`;
    },
  };
}

/**
 * Runs `fn` in a transaction on a reserved connection (BEGIN … COMMIT, ROLLBACK on error).
 * Not `sql.begin()`: in postgres@3.4.9 with `max_pipeline: 1` it can send BEGIN without
 * reserving the connection (porsager/postgres#1189, #1218), which surfaced here as
 * UNSAFE_TRANSACTION under 50 concurrent writes and can leave a transaction open on a
 * pooled connection.
 */
export async function transaction<T>(sql: Sql, fn: (tx: ReservedSql) => Promise<T>): Promise<T> {
  const conn = await sql.reserve();
  try {
    await conn`BEGIN`;
    try {
      const out = await fn(conn);
      await conn`COMMIT`;
      return out;
    } catch (err) {
      await conn`ROLLBACK`.catch(() => {});
      throw err;
    }
  } finally {
    conn.release();
  }
}
