/** PostgreSQL through `npm:postgres`. */
import postgres from "postgres";
import type { BackendProbe } from "../backend.ts";

export type Sql = postgres.Sql<Record<string, unknown>>;

export interface PostgresOptions {
  /** Pool size (default 10). */
  max?: number;
  /** Seconds to wait for a connection (default 5). */
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
    connect_timeout: opts.connectTimeout ?? 5,
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
