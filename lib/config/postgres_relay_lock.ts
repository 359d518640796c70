/** The outbox relay lock in PostgreSQL: a session advisory lock on a reserved connection. */
import type { ReservedSql, Sql } from "../backends/postgres.ts";
import { log } from "../log.ts";
import type { RelayLock } from "./adapters.ts";

/** The advisory lock id the replicas of one database contend for. */
export const RELAY_LOCK_ID = 727_274_002;

/**
 * Held by the one replica that relays the outbox. The lock is checked on every
 * {@link acquire}, so a lost connection (which drops the lock in PostgreSQL) is noticed
 * before relaying again.
 */
export class PostgresRelayLock implements RelayLock {
  readonly #sql: Sql;
  readonly #id: number;
  readonly #instance: string;
  /** The session holding the lock, while held. */
  #conn: ReservedSql | null = null;

  /**
   * @param sql the store's pool (one connection is reserved while the lock is held)
   * @param opts `id`: the lock (default {@link RELAY_LOCK_ID}); `instance`: for the log
   */
  constructor(sql: Sql, opts: { id?: number; instance?: string } = {}) {
    this.#sql = sql;
    this.#id = opts.id ?? RELAY_LOCK_ID;
    this.#instance = opts.instance ?? "";
  }

  async acquire(): Promise<boolean> {
    if (this.#conn) {
      if (await this.#check(this.#conn).catch(() => false)) return true;
      this.release();
    }
    const conn = await this.#sql.reserve();
    let ok = false;
    try {
      ok = Boolean((await conn`SELECT pg_try_advisory_lock(${this.#id}) AS ok`)[0].ok);
    } finally {
      if (!ok) conn.release();
    }
    if (!ok) return false;
    this.#conn = conn;
    log.info("relaying the configuration outbox to Kafka", { instance: this.#instance });
    return true;
  }

  held(): boolean {
    return this.#conn !== null;
  }

  release(): void {
    const conn = this.#conn;
    if (!conn) return;
    this.#conn = null;
    // Unlock before the connection goes back to the pool, or a pooled session would keep
    // holding it.
    conn`SELECT pg_advisory_unlock(${this.#id})`.catch(() => {}).finally(() => conn.release());
  }

  async #check(conn: ReservedSql): Promise<boolean> {
    const rows = await conn`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
      AND objid = ${this.#id} AND pid = pg_backend_pid() AND granted) AS held`;
    return Boolean(rows[0].held);
  }
}
