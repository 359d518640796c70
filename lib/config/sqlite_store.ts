/** The embedded `ConfigStore`: SQLite (WAL, synchronous=FULL) through `node:sqlite`. */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  type ChangeFilter,
  type ConfigStore,
  likePrefix,
  type ListFilter,
  type WriteResult,
} from "./store.ts";
import {
  changeFromRow,
  entryFromRow,
  type EntryId,
  historyFromRow,
  planWrite,
  type StoredChange,
  type StoredEntry,
  type StoredHistory,
  type WriteOp,
} from "./model.ts";

const MIGRATIONS: string[] = [
  `CREATE TABLE config_entries (
     environment TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,
     value TEXT NOT NULL, secret INTEGER NOT NULL DEFAULT 0, description TEXT,
     version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
     updated_by TEXT NOT NULL,
     PRIMARY KEY (environment, service, key));
   CREATE TABLE config_history (
     environment TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,
     version INTEGER NOT NULL, change_type TEXT NOT NULL, value TEXT,
     secret INTEGER NOT NULL DEFAULT 0, description TEXT,
     updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
     PRIMARY KEY (environment, service, key, version));
   CREATE TABLE config_changes (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
     type TEXT NOT NULL, environment TEXT NOT NULL, service TEXT NOT NULL, key TEXT NOT NULL,
     version INTEGER NOT NULL, value TEXT, secret INTEGER NOT NULL DEFAULT 0, description TEXT,
     created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
     published INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX config_changes_unpublished ON config_changes (seq) WHERE published = 0;`,
];

type Row = Record<string, unknown>;

export class SqliteConfigStore implements ConfigStore {
  readonly kind = "sqlite";
  readonly #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  #q(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  migrate(): Promise<void> {
    const db = this.#db;
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    );
    const done = new Set(
      (db.prepare("SELECT version FROM schema_migrations").all() as Row[]).map((r) =>
        Number(r.version)
      ),
    );
    MIGRATIONS.forEach((sql, i) => {
      const v = i + 1;
      if (done.has(v)) return;
      db.exec("BEGIN IMMEDIATE");
      try {
        db.exec(sql);
        db.prepare("INSERT INTO schema_migrations VALUES (?, ?)").run(v, new Date().toISOString());
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    });
    return Promise.resolve();
  }

  get(id: EntryId): Promise<StoredEntry | null> {
    const r = this.#q(
      "SELECT * FROM config_entries WHERE environment = ? AND service = ? AND key = ?",
    ).get(id.environment, id.service, id.key) as Row | undefined;
    return Promise.resolve(r ? entryFromRow(r) : null);
  }

  getMany(environment: string, service: string, keys: string[]): Promise<StoredEntry[]> {
    if (keys.length === 0) return Promise.resolve([]);
    const rows = this.#db.prepare(
      `SELECT * FROM config_entries WHERE environment = ? AND service = ?
       AND key IN (${keys.map(() => "?").join(",")})`,
    ).all(environment, service, ...keys) as Row[];
    return Promise.resolve(rows.map(entryFromRow));
  }

  list(f: ListFilter): Promise<StoredEntry[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.environment !== undefined) {
      where.push("environment = ?");
      args.push(f.environment);
    }
    if (f.service !== undefined) {
      where.push("service = ?");
      args.push(f.service);
    }
    if (f.keys && f.keys.length > 0) {
      where.push(`key IN (${f.keys.map(() => "?").join(",")})`);
      args.push(...f.keys);
    }
    if (f.prefix) {
      // LIKE is case-insensitive for ASCII in SQLite: substr keeps the prefix exact.
      where.push("key LIKE ? ESCAPE '\\' AND substr(key, 1, ?) = ?");
      args.push(likePrefix(f.prefix), f.prefix.length, f.prefix);
    }
    const sql = `SELECT * FROM config_entries ${where.length ? "WHERE " + where.join(" AND ") : ""}
      ORDER BY environment, service, key LIMIT ? OFFSET ?`;
    const rows = this.#db.prepare(sql).all(...args, f.limit, f.offset) as Row[];
    return Promise.resolve(rows.map(entryFromRow));
  }

  write(op: WriteOp): Promise<WriteResult> {
    // Fully synchronous: no other message of this actor can run inside the transaction.
    const db = this.#db;
    const id = op.id;
    db.exec("BEGIN IMMEDIATE");
    try {
      const cur = this.#q(
        "SELECT * FROM config_entries WHERE environment = ? AND service = ? AND key = ?",
      ).get(id.environment, id.service, id.key) as Row | undefined;
      const last = this.#q(
        "SELECT COALESCE(MAX(version), 0) AS v FROM config_history WHERE environment = ? AND service = ? AND key = ?",
      ).get(id.environment, id.service, id.key) as Row;
      let target: StoredHistory | null | undefined;
      if (op.kind === "rollback") {
        const t = this.#q(
          "SELECT * FROM config_history WHERE environment = ? AND service = ? AND key = ? AND version = ?",
        ).get(id.environment, id.service, id.key, op.toVersion) as Row | undefined;
        target = t ? historyFromRow(t) : null;
      }
      const plan = planWrite(
        op,
        { current: cur ? entryFromRow(cur) : null, lastVersion: Number(last.v), target },
        new Date().toISOString(),
        crypto.randomUUID(),
      );
      const e = plan.entry;
      if (e) {
        this.#q(
          `INSERT INTO config_entries (environment, service, key, value, secret, description,
             version, created_at, updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?,?,?)
           ON CONFLICT (environment, service, key) DO UPDATE SET value = excluded.value,
             secret = excluded.secret, description = excluded.description,
             version = excluded.version, updated_at = excluded.updated_at,
             updated_by = excluded.updated_by`,
        ).run(
          e.environment,
          e.service,
          e.key,
          e.value,
          e.secret ? 1 : 0,
          e.description,
          e.version,
          e.created_at,
          e.updated_at,
          e.updated_by,
        );
      } else {
        this.#q(
          "DELETE FROM config_entries WHERE environment = ? AND service = ? AND key = ?",
        ).run(id.environment, id.service, id.key);
      }
      const h = plan.history;
      this.#q(
        `INSERT INTO config_history (environment, service, key, version, change_type, value,
           secret, description, updated_at, updated_by) VALUES (?,?,?,?,?,?,?,?,?,?)`,
      ).run(
        h.environment,
        h.service,
        h.key,
        h.version,
        h.change_type,
        h.value,
        h.secret ? 1 : 0,
        h.description,
        h.updated_at,
        h.updated_by,
      );
      const c = plan.change;
      const r = this.#q(
        `INSERT INTO config_changes (event_id, type, environment, service, key, version, value,
           secret, description, created_at, updated_at, updated_by)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?) RETURNING seq`,
      ).get(
        c.event_id,
        c.type,
        c.environment,
        c.service,
        c.key,
        c.version,
        c.value,
        c.secret ? 1 : 0,
        c.description,
        c.created_at,
        c.updated_at,
        c.updated_by,
      ) as Row;
      db.exec("COMMIT");
      return Promise.resolve({ entry: e, change: { ...c, seq: Number(r.seq) } });
    } catch (err) {
      db.exec("ROLLBACK");
      return Promise.reject(err);
    }
  }

  history(id: EntryId, limit: number, offset: number): Promise<StoredHistory[]> {
    const rows = this.#q(
      `SELECT * FROM config_history WHERE environment = ? AND service = ? AND key = ?
       ORDER BY version DESC LIMIT ? OFFSET ?`,
    ).all(id.environment, id.service, id.key, limit, offset) as Row[];
    return Promise.resolve(rows.map(historyFromRow));
  }

  changesSince(after: number, f: ChangeFilter, limit: number): Promise<StoredChange[]> {
    const where = ["seq > ?"];
    const args: (string | number)[] = [after];
    if (f.environment !== undefined) {
      where.push("environment = ?");
      args.push(f.environment);
    }
    if (f.service !== undefined) {
      where.push("service IN (?, '')");
      args.push(f.service);
    }
    const rows = this.#db.prepare(
      `SELECT * FROM config_changes WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`,
    ).all(...args, limit) as Row[];
    return Promise.resolve(rows.map((r) => changeFromRow(r)));
  }

  maxSeq(): Promise<number> {
    const r = this.#q("SELECT COALESCE(MAX(seq), 0) AS s FROM config_changes").get() as Row;
    return Promise.resolve(Number(r.s));
  }

  unpublished(limit: number): Promise<StoredChange[]> {
    const rows = this.#q(
      "SELECT * FROM config_changes WHERE published = 0 ORDER BY seq LIMIT ?",
    ).all(limit) as Row[];
    return Promise.resolve(rows.map((r) => changeFromRow(r)));
  }

  markPublished(seqs: number[]): Promise<void> {
    if (seqs.length === 0) return Promise.resolve();
    this.#db.prepare(
      `UPDATE config_changes SET published = 1 WHERE seq IN (${seqs.map(() => "?").join(",")})`,
    ).run(...seqs);
    return Promise.resolve();
  }

  backlog(): Promise<number> {
    const r = this.#q("SELECT COUNT(*) AS n FROM config_changes WHERE published = 0").get() as Row;
    return Promise.resolve(Number(r.n));
  }

  prune(before: string, all: boolean): Promise<number> {
    // The newest change always stays, so the sequence never restarts after a prune.
    const r = this.#db.prepare(
      `DELETE FROM config_changes WHERE updated_at < ? ${all ? "" : "AND published = 1"}
       AND seq < (SELECT MAX(seq) FROM config_changes)`,
    ).run(before);
    return Promise.resolve(Number(r.changes));
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}
