/**
 * Last-known-good flag definitions per environment, and the outbox of flag-change events.
 * A snapshot and the events of the change it records are written in one transaction, the
 * diff taken against the stored snapshot under a lock: each change yields one event per
 * environment even with several service instances syncing the same Unleash.
 */
import type { DatabaseSync } from "node:sqlite";
import { type Sql, transaction } from "../backends/postgres.ts";

export interface Snapshot {
  environment: string;
  hash: string;
  etag: string | null;
  /** Client-API JSON text. */
  doc: string;
  synced_at: string;
}

export interface FlagEvent {
  flag: string;
  environment: string;
  change: string;
  at: string;
}

export interface OutboxRow {
  id: number;
  event: FlagEvent;
}

export interface FlagStore {
  migrate(): Promise<void>;
  load(): Promise<Snapshot[]>;
  /**
   * Stores `snap` unless the stored one has the same hash; `diff` gets the stored document
   * (or null) and gives the events to enqueue with it. Resolves the events written.
   */
  save(snap: Snapshot, diff: (previousDoc: string | null) => FlagEvent[]): Promise<FlagEvent[]>;
  /** Marks the environment as confirmed by the source without a change. */
  touch(environment: string, etag: string | null, at: string): Promise<void>;
  /**
   * Hands up to `limit` queued events, oldest first, to `send` and deletes them once it
   * resolves; a rejection leaves them queued. Resolves how many were sent.
   */
  drain(limit: number, send: (rows: OutboxRow[]) => Promise<void>): Promise<number>;
  close(): Promise<void>;
}

const SNAPSHOTS = `CREATE TABLE IF NOT EXISTS flag_snapshots (
  environment TEXT PRIMARY KEY, hash TEXT NOT NULL, etag TEXT, doc TEXT NOT NULL,
  synced_at TEXT NOT NULL)`;

export class SqliteFlagStore implements FlagStore {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  migrate(): Promise<void> {
    this.#db.exec(SNAPSHOTS);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS flag_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL)`);
    return Promise.resolve();
  }
  load(): Promise<Snapshot[]> {
    return Promise.resolve(
      this.#db.prepare("SELECT * FROM flag_snapshots").all() as unknown as Snapshot[],
    );
  }
  save(snap: Snapshot, diff: (previousDoc: string | null) => FlagEvent[]): Promise<FlagEvent[]> {
    const db = this.#db;
    db.exec("BEGIN IMMEDIATE");
    try {
      const cur = db.prepare("SELECT hash, doc FROM flag_snapshots WHERE environment = ?")
        .get(snap.environment) as { hash: string; doc: string } | undefined;
      if (cur?.hash === snap.hash) {
        db.prepare("UPDATE flag_snapshots SET etag = ?, synced_at = ? WHERE environment = ?")
          .run(snap.etag, snap.synced_at, snap.environment);
        db.exec("COMMIT");
        return Promise.resolve([]);
      }
      const events = diff(cur?.doc ?? null);
      db.prepare(
        `INSERT INTO flag_snapshots (environment, hash, etag, doc, synced_at) VALUES (?,?,?,?,?)
         ON CONFLICT (environment) DO UPDATE SET hash = excluded.hash, etag = excluded.etag,
         doc = excluded.doc, synced_at = excluded.synced_at`,
      ).run(snap.environment, snap.hash, snap.etag, snap.doc, snap.synced_at);
      const ins = db.prepare("INSERT INTO flag_outbox (event) VALUES (?)");
      for (const e of events) ins.run(JSON.stringify(e));
      db.exec("COMMIT");
      return Promise.resolve(events);
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }
  touch(environment: string, etag: string | null, at: string): Promise<void> {
    this.#db.prepare("UPDATE flag_snapshots SET etag = ?, synced_at = ? WHERE environment = ?")
      .run(etag, at, environment);
    return Promise.resolve();
  }
  async drain(limit: number, send: (rows: OutboxRow[]) => Promise<void>): Promise<number> {
    // One process owns an SQLite file, and the FlagActor drains one batch at a time.
    const rows = (this.#db.prepare("SELECT id, event FROM flag_outbox ORDER BY id LIMIT ?")
      .all(limit) as { id: number; event: string }[])
      .map((r) => ({ id: Number(r.id), event: JSON.parse(r.event) as FlagEvent }));
    if (rows.length === 0) return 0;
    await send(rows);
    this.#db.prepare(`DELETE FROM flag_outbox WHERE id <= ?`).run(rows[rows.length - 1].id);
    return rows.length;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class PostgresFlagStore implements FlagStore {
  readonly #sql: Sql;
  constructor(sql: Sql) {
    this.#sql = sql;
  }
  async migrate(): Promise<void> {
    await transaction(this.#sql, async (tx) => {
      // One migrator at a time: concurrent CREATE TABLE IF NOT EXISTS can still collide.
      await tx`SELECT pg_advisory_xact_lock(hashtext('config-service:flags:migrate'))`;
      await tx.unsafe(SNAPSHOTS);
      await tx.unsafe(`CREATE TABLE IF NOT EXISTS flag_outbox (
        id BIGSERIAL PRIMARY KEY, event TEXT NOT NULL)`);
    });
  }
  async load(): Promise<Snapshot[]> {
    const rows = await this.#sql`SELECT * FROM flag_snapshots`;
    return rows as unknown as Snapshot[];
  }
  save(snap: Snapshot, diff: (previousDoc: string | null) => FlagEvent[]): Promise<FlagEvent[]> {
    return transaction(this.#sql, async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${
        "config-service:flags:" + snap.environment
      }))`;
      const [cur] = await tx`SELECT hash, doc FROM flag_snapshots
        WHERE environment = ${snap.environment}`;
      if (cur?.hash === snap.hash) {
        await tx`UPDATE flag_snapshots SET etag = ${snap.etag}, synced_at = ${snap.synced_at}
          WHERE environment = ${snap.environment}`;
        return [];
      }
      const events = diff((cur?.doc as string | undefined) ?? null);
      await tx`INSERT INTO flag_snapshots ${tx(snap)}
        ON CONFLICT (environment) DO UPDATE SET hash = excluded.hash, etag = excluded.etag,
        doc = excluded.doc, synced_at = excluded.synced_at`;
      for (const e of events) {
        await tx`INSERT INTO flag_outbox (event) VALUES (${JSON.stringify(e)})`;
      }
      return events;
    });
  }
  async touch(environment: string, etag: string | null, at: string): Promise<void> {
    await this.#sql`UPDATE flag_snapshots SET etag = ${etag}, synced_at = ${at}
      WHERE environment = ${environment}`;
  }
  drain(limit: number, send: (rows: OutboxRow[]) => Promise<void>): Promise<number> {
    // Rows stay locked while they are sent: another instance draining skips them, so an
    // event is published by one instance (at least once: a crash after sending, before
    // COMMIT, sends it again).
    return transaction(this.#sql, async (tx) => {
      const rows = (await tx`SELECT id, event FROM flag_outbox ORDER BY id LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`).map((r) => ({
        id: Number(r.id),
        event: JSON.parse(String(r.event)) as FlagEvent,
      }));
      if (rows.length === 0) return 0;
      await send(rows);
      await tx`DELETE FROM flag_outbox WHERE id IN ${tx(rows.map((r) => r.id))}`;
      return rows.length;
    });
  }
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 2 });
  }
}
