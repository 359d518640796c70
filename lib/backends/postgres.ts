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
 *
 * Its `reserve()` returns a guarded connection (see {@link isConnectionLoss}): once the
 * connection is lost, its queries reject with `CONNECTION_CLOSED` without reaching the
 * driver, and `release()` does not hand it back to the pool.
 */
export function createPostgres(url: string, opts: PostgresOptions = {}): Sql {
  const reservations = new Reservations();
  const sql = postgres(url.replace(/^postgresql\+asyncpg:/, "postgresql:"), {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeout ?? 3,
    // The default reconnect backoff grows to 20 s and is shared by the pool: during an
    // outage every new query first waited seconds just to try connecting (→ 504s).
    backoff: () => 0.25,
    max_pipeline: 1,
    idle_timeout: 60,
    onnotice: () => {},
    // A replica frozen (SIGSTOP, a VM pause) inside a transaction holds its locks (the change
    // log's sequencer lock) until the server ends the transaction: every other replica's
    // writes waited for it and answered 503 (found by the chaos run). Ours never sit idle
    // inside a transaction, so 2 s is ample, and below the 4 s bound on a store call.
    connection: { idle_in_transaction_session_timeout: 2000 },
    onclose: (connId: number) => reservations.closed(connId),
  } as postgres.Options<Record<string, never>>);
  const reserve = sql.reserve;
  sql.reserve = async () => {
    // A `reserve()` that finds no open connection queues a request that stays queued after its
    // connection attempt failed; once the server is back, the pool hands a connection to that
    // settled request and never gets it back (one connection lost per stale request, until
    // every write hangs). So after a close, a pooled query proves the server is back first.
    if (reservations.suspect) {
      await sql`SELECT 1`;
      reservations.suspect = false;
    }
    try {
      return guardReserved(await reserve(), sql.options, reservations);
    } catch (err) {
      if (isConnectionLoss(err)) reservations.suspect = true;
      throw err;
    }
  };
  return sql;
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
 * pooled connection; and its own ROLLBACK after a lost connection is the write that kills
 * the process (porsager/postgres#1208). On a lost connection there is nothing to roll back
 * (PostgreSQL aborts the session's transaction) and the guarded connection sends nothing.
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
      if (!isConnectionLoss(err)) await conn`ROLLBACK`.catch(() => {});
      throw err;
    }
  } finally {
    conn.release();
  }
}

/** postgres.js codes (and socket error codes) of errors that mean the connection is gone. */
const LOST_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ERR_STREAM_DESTROYED",
]);

/**
 * Whether `err` says the connection it came from is gone: a postgres.js connection error, a
 * socket error (it has a `syscall`), a FATAL/PANIC from the server (which then closes the
 * session: 57P01 on `pg_ctl stop -m fast`), or SQLSTATE class 08 (connection exception).
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { code?: unknown; severity?: unknown; syscall?: unknown };
  if (e.severity === "FATAL" || e.severity === "PANIC") return true;
  if (typeof e.syscall === "string") return true;
  return typeof e.code === "string" && (LOST_CODES.has(e.code) || e.code.startsWith("08"));
}

/** A reserved connection's state, shared by its guard and the pool's close callback. */
interface Reservation {
  /** The driver's connection id, learnt from the first query that ran on it. */
  connId: number | undefined;
  lost: boolean;
  released: boolean;
  /** Queries handed to the driver and not settled yet. */
  pending: Set<DriverQuery>;
}

/** The reservations of one pool by connection id: the pool's `onclose` marks them lost. */
class Reservations {
  readonly #byConn = new Map<number, Reservation>();
  /** A connection of the pool closed since the server last answered a probe. */
  suspect = false;

  track(connId: number, r: Reservation): void {
    r.connId = connId;
    this.#byConn.set(connId, r);
  }

  forget(r: Reservation): void {
    if (r.connId !== undefined && this.#byConn.get(r.connId) === r) this.#byConn.delete(r.connId);
  }

  closed(connId: number): void {
    this.suspect = true;
    const r = this.#byConn.get(connId);
    if (!r) return;
    r.lost = true;
    this.#byConn.delete(connId);
    // A query written after the socket failed and before it closed is never settled by the
    // driver (a close after an error rejects nothing), and would hold its caller forever.
    for (const q of r.pending) q.reject(connectionClosed());
    r.pending.clear();
  }
}

/** The parts of a postgres.js 3.x `Query` the guard uses (not in its public types). */
interface DriverQuery {
  handler: (q: DriverQuery) => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

function isDriverQuery(q: unknown): q is DriverQuery {
  return q instanceof Promise && typeof (q as Partial<DriverQuery>).handler === "function" &&
    typeof (q as Partial<DriverQuery>).reject === "function";
}

function connectionClosed(): Error {
  return Object.assign(new Error("write CONNECTION_CLOSED (reserved connection lost)"), {
    code: "CONNECTION_CLOSED",
  });
}

/**
 * Wraps a reserved connection so that nothing is written to it once it is lost. In
 * postgres@3.4.9 a query on a reserved connection whose socket closed schedules a write that
 * throws from a `setImmediate` (`socket.write` on null: porsager/postgres#1154, #1208; fixes
 * #1168/#1209 unreleased) — outside any await, so it kills the worker; and releasing such a
 * connection puts the dead connection in the pool's open queue, where the next pooled query
 * hits the same throw (porsager/postgres#1199).
 *
 * The connection is lost when the pool reports its close (`onclose`, keyed by the driver's
 * connection id, which its `debug` hook reports while the first query is being built — the
 * hook is set only for that synchronous call) or when one of its queries failed with
 * {@link isConnectionLoss}. Each query is checked when the driver executes it, not when it is
 * created, so one created before the loss and awaited after is refused too.
 */
function guardReserved(
  conn: ReservedSql,
  options: { debug: unknown },
  reservations: Reservations,
): ReservedSql {
  const r: Reservation = { connId: undefined, lost: false, released: false, pending: new Set() };
  const guard = <Q>(q: Q): Q => {
    // Identifiers and fragments are not queries: they run inside one.
    if (!isDriverQuery(q)) return q;
    const run = q.handler;
    q.handler = (query) => {
      if (r.lost || r.released) return query.reject(connectionClosed());
      const { resolve, reject } = query;
      query.resolve = (value) => {
        r.pending.delete(query);
        resolve(value);
      };
      query.reject = (err) => {
        r.pending.delete(query);
        if (isConnectionLoss(err)) r.lost = reservations.suspect = true;
        reject(err);
      };
      r.pending.add(query);
      if (r.connId !== undefined) return run(query);
      const debug = options.debug;
      options.debug = (connId: number) => reservations.track(connId, r);
      try {
        return run(query);
      } finally {
        options.debug = debug;
      }
    };
    return q;
  };
  const guarded =
    ((...args: Parameters<ReservedSql>) =>
      guard((conn as (...a: unknown[]) => unknown)(...args))) as unknown as ReservedSql;
  Object.assign(guarded, conn, {
    unsafe: (...args: Parameters<ReservedSql["unsafe"]>) => guard(conn.unsafe(...args)),
    file: (...args: Parameters<ReservedSql["file"]>) => guard(conn.file(...args)),
    release: () => {
      if (r.released) return;
      r.released = true;
      reservations.forget(r);
      if (!r.lost) conn.release();
    },
  });
  return guarded;
}
