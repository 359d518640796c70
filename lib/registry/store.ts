/**
 * Durable registration records: the source of truth the ZooKeeper ephemerals are rebuilt
 * from (on reconnect, session expiry and restart), heartbeat state included. SQLite in
 * embedded mode, PostgreSQL otherwise; one table, so both implementations share the SQL text
 * where they can.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Sql } from "../backends/postgres.ts";
import type { Instance, InstanceStatus } from "./model.ts";
import { BackendUnavailableError, DomainError } from "../errors.ts";
import { withinMs } from "../async.ts";

/** What a health outcome or a heartbeat changes in a record. */
export type HealthFields = Pick<
  Instance,
  "status" | "last_health_check" | "last_check_latency_ms" | "unhealthy_since" | "missed_heartbeat"
>;

/** The registration records. */
export interface RegistryStore {
  /** Creates the table, or adds to an existing one the columns it lacks. */
  migrate(): Promise<void>;
  /** Inserts or replaces; resolves true when the instance was new. */
  upsert(i: Instance): Promise<boolean>;
  /** Resolves true when it existed. */
  remove(service: string, id: string): Promise<boolean>;
  list(): Promise<Instance[]>;
  /** Writes the health fields (`last_check_latency_ms` or `missed_heartbeat` absent: null). */
  setHealth(service: string, id: string, h: HealthFields): Promise<void>;
  /** Resolves true when the instance exists. */
  heartbeat(service: string, id: string, at: string): Promise<boolean>;
  /** One record, or null. */
  get(service: string, id: string): Promise<Instance | null>;
  /**
   * What changed after revision `since` (every write gives the record, or its removal, a new
   * revision). Present when several replicas share the records (PostgreSQL); each replica
   * follows the others' registrations, heartbeats and health through it.
   */
  changes?(since: number): Promise<RegistryChanges>;
  close(): Promise<void>;
}

/** Records written and removed after a revision, each with its revision. */
export interface RegistryChanges {
  upserts: { instance: Instance; revision: number }[];
  removed: { service: string; id: string; revision: number }[];
}

/** Whether two instances hold the same record (what the store keeps of them). */
export function sameRecord(a: Instance, b: Instance): boolean {
  const x = toRow(a);
  const y = toRow(b);
  return COLUMNS.every((c) => x[c] === y[c]);
}

const DDL = `CREATE TABLE IF NOT EXISTS registry_instances (
  service_name TEXT NOT NULL, instance_id TEXT NOT NULL, service_url TEXT NOT NULL,
  health_check_url TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL,
  last_health_check TEXT, registered_at TEXT NOT NULL, ttl_seconds INTEGER,
  last_heartbeat TEXT, unhealthy_since TEXT, missed_heartbeat TEXT,
  last_check_latency_ms DOUBLE PRECISION,
  PRIMARY KEY (service_name, instance_id))`;

/** Columns added after the table's first release: name → SQL type, for existing tables. */
const ADDED_COLUMNS = {
  missed_heartbeat: "TEXT",
  last_check_latency_ms: "DOUBLE PRECISION",
} as const;

const COLUMNS = [
  "service_name",
  "instance_id",
  "service_url",
  "health_check_url",
  "metadata",
  "status",
  "last_health_check",
  "registered_at",
  "ttl_seconds",
  "last_heartbeat",
  "unhealthy_since",
  "missed_heartbeat",
  "last_check_latency_ms",
] as const;

function toRow(i: Instance): Record<(typeof COLUMNS)[number], string | number | null> {
  return {
    ...i,
    metadata: JSON.stringify(i.metadata),
    missed_heartbeat: i.missed_heartbeat ?? null,
    last_check_latency_ms: i.last_check_latency_ms ?? null,
  };
}

function fromRow(r: Record<string, unknown>): Instance {
  return {
    service_name: String(r.service_name),
    instance_id: String(r.instance_id),
    service_url: String(r.service_url),
    health_check_url: String(r.health_check_url),
    metadata: JSON.parse(String(r.metadata)),
    status: r.status as InstanceStatus,
    last_health_check: (r.last_health_check as string | null) ?? null,
    registered_at: String(r.registered_at),
    ttl_seconds: r.ttl_seconds === null || r.ttl_seconds === undefined
      ? null
      : Number(r.ttl_seconds),
    last_heartbeat: (r.last_heartbeat as string | null) ?? null,
    unhealthy_since: (r.unhealthy_since as string | null) ?? null,
    missed_heartbeat: (r.missed_heartbeat as InstanceStatus | null) ?? null,
    last_check_latency_ms: r.last_check_latency_ms === null || r.last_check_latency_ms === undefined
      ? null
      : Number(r.last_check_latency_ms),
  };
}

export class SqliteRegistryStore implements RegistryStore {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  migrate(): Promise<void> {
    this.#db.exec(DDL);
    // SQLite has no ADD COLUMN IF NOT EXISTS: add what the table's columns lack.
    const have = new Set(
      (this.#db.prepare("PRAGMA table_info(registry_instances)").all() as { name: string }[])
        .map((c) => c.name),
    );
    for (const [name, type] of Object.entries(ADDED_COLUMNS)) {
      if (!have.has(name)) {
        this.#db.exec(`ALTER TABLE registry_instances ADD COLUMN ${name} ${type}`);
      }
    }
    return Promise.resolve();
  }
  upsert(i: Instance): Promise<boolean> {
    const existed = this.#db.prepare(
      "SELECT 1 FROM registry_instances WHERE service_name = ? AND instance_id = ?",
    ).get(i.service_name, i.instance_id) !== undefined;
    const row = toRow(i);
    this.#db.prepare(
      `INSERT OR REPLACE INTO registry_instances (${COLUMNS.join(",")})
       VALUES (${COLUMNS.map(() => "?").join(",")})`,
    ).run(...COLUMNS.map((c) => row[c]));
    return Promise.resolve(!existed);
  }
  remove(service: string, id: string): Promise<boolean> {
    const r = this.#db.prepare(
      "DELETE FROM registry_instances WHERE service_name = ? AND instance_id = ?",
    ).run(service, id);
    return Promise.resolve(Number(r.changes) > 0);
  }
  list(): Promise<Instance[]> {
    const rows = this.#db.prepare(
      "SELECT * FROM registry_instances ORDER BY service_name, instance_id",
    ).all() as Record<string, unknown>[];
    return Promise.resolve(rows.map(fromRow));
  }
  setHealth(service: string, id: string, h: HealthFields): Promise<void> {
    this.#db.prepare(
      `UPDATE registry_instances SET status = ?, last_health_check = ?,
       last_check_latency_ms = ?, unhealthy_since = ?, missed_heartbeat = ?
       WHERE service_name = ? AND instance_id = ?`,
    ).run(
      h.status,
      h.last_health_check,
      h.last_check_latency_ms ?? null,
      h.unhealthy_since,
      h.missed_heartbeat ?? null,
      service,
      id,
    );
    return Promise.resolve();
  }
  heartbeat(service: string, id: string, at: string): Promise<boolean> {
    const r = this.#db.prepare(
      "UPDATE registry_instances SET last_heartbeat = ? WHERE service_name = ? AND instance_id = ?",
    ).run(at, service, id);
    return Promise.resolve(Number(r.changes) > 0);
  }
  get(service: string, id: string): Promise<Instance | null> {
    const r = this.#db.prepare(
      "SELECT * FROM registry_instances WHERE service_name = ? AND instance_id = ?",
    ).get(service, id) as Record<string, unknown> | undefined;
    return Promise.resolve(r ? fromRow(r) : null);
  }
  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

/**
 * PostgreSQL records, shared by every replica. Each write takes the next value of one
 * sequence as the record's `revision`; a removal leaves a tombstone with its revision in
 * `registry_removed`. {@link changes} reads both past a revision, so each replica follows
 * what the others write.
 */
const PG_REVISION_DDL = [
  "CREATE SEQUENCE IF NOT EXISTS registry_revision",
  `ALTER TABLE registry_instances ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL
     DEFAULT nextval('registry_revision')`,
  "CREATE INDEX IF NOT EXISTS registry_instances_revision ON registry_instances (revision)",
  `CREATE TABLE IF NOT EXISTS registry_removed (
     service_name TEXT NOT NULL, instance_id TEXT NOT NULL,
     revision BIGINT NOT NULL DEFAULT nextval('registry_revision'),
     removed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     PRIMARY KEY (service_name, instance_id))`,
  "CREATE INDEX IF NOT EXISTS registry_removed_revision ON registry_removed (revision)",
];

/** Tombstones older than this are pruned (a replica away longer reads everything again). */
const TOMBSTONE_KEEP = "1 hour";

export class PostgresRegistryStore implements RegistryStore {
  readonly #sql: Sql;
  #writes = 0;
  constructor(sql: Sql) {
    this.#sql = sql;
  }
  async migrate(): Promise<void> {
    await this.#sql.unsafe(DDL);
    // Looked up first: ALTER TABLE takes an exclusive lock even when the column exists.
    const have = new Set(
      (await this.#sql`SELECT column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'registry_instances'`)
        .map((r) => String(r.column_name)),
    );
    for (const [name, type] of Object.entries(ADDED_COLUMNS)) {
      if (have.has(name)) continue;
      // IF NOT EXISTS: another replica may add it between the lookup and here.
      await this.#sql.unsafe(
        `ALTER TABLE registry_instances ADD COLUMN IF NOT EXISTS ${name} ${type}`,
      );
    }
    const removed = (await this.#sql`SELECT to_regclass('registry_removed') AS t`)[0].t;
    if (!have.has("revision") || removed === null) {
      for (const ddl of PG_REVISION_DDL) await this.#sql.unsafe(ddl);
    }
  }
  async upsert(i: Instance): Promise<boolean> {
    const row = toRow(i);
    const r = await this.#sql`INSERT INTO registry_instances ${this.#sql(row, ...COLUMNS)}
      ON CONFLICT (service_name, instance_id) DO UPDATE SET
        service_url = excluded.service_url, health_check_url = excluded.health_check_url,
        metadata = excluded.metadata, status = excluded.status,
        last_health_check = excluded.last_health_check, ttl_seconds = excluded.ttl_seconds,
        last_heartbeat = excluded.last_heartbeat, unhealthy_since = excluded.unhealthy_since,
        missed_heartbeat = excluded.missed_heartbeat,
        last_check_latency_ms = excluded.last_check_latency_ms,
        revision = nextval('registry_revision')
      RETURNING (xmax = 0) AS inserted`;
    return Boolean(r[0].inserted);
  }
  async remove(service: string, id: string): Promise<boolean> {
    // One statement: the record goes and its tombstone comes together.
    const r = await this.#sql`WITH gone AS (
        DELETE FROM registry_instances
        WHERE service_name = ${service} AND instance_id = ${id}
        RETURNING service_name, instance_id)
      INSERT INTO registry_removed (service_name, instance_id)
        SELECT service_name, instance_id FROM gone
      ON CONFLICT (service_name, instance_id) DO UPDATE SET
        revision = nextval('registry_revision'), removed_at = now()`;
    if (++this.#writes % 1000 === 0) {
      await this.#sql`DELETE FROM registry_removed
        WHERE removed_at < now() - ${TOMBSTONE_KEEP}::interval`;
    }
    return r.count > 0;
  }
  async list(): Promise<Instance[]> {
    const rows = await this.#sql`SELECT * FROM registry_instances
      ORDER BY service_name, instance_id`;
    return rows.map(fromRow);
  }
  async setHealth(service: string, id: string, h: HealthFields): Promise<void> {
    await this.#sql`UPDATE registry_instances SET status = ${h.status},
      last_health_check = ${h.last_health_check},
      last_check_latency_ms = ${h.last_check_latency_ms ?? null},
      unhealthy_since = ${h.unhealthy_since},
      missed_heartbeat = ${h.missed_heartbeat ?? null},
      revision = nextval('registry_revision')
      WHERE service_name = ${service} AND instance_id = ${id}`;
  }
  async heartbeat(service: string, id: string, at: string): Promise<boolean> {
    const r = await this.#sql`UPDATE registry_instances SET last_heartbeat = ${at},
      revision = nextval('registry_revision')
      WHERE service_name = ${service} AND instance_id = ${id}`;
    return r.count > 0;
  }
  async get(service: string, id: string): Promise<Instance | null> {
    const rows = await this.#sql`SELECT * FROM registry_instances
      WHERE service_name = ${service} AND instance_id = ${id}`;
    return rows.length === 0 ? null : fromRow(rows[0]);
  }
  async changes(since: number): Promise<RegistryChanges> {
    const [rows, gone] = await Promise.all([
      this.#sql`SELECT * FROM registry_instances WHERE revision > ${since}`,
      this.#sql`SELECT service_name, instance_id, revision FROM registry_removed
        WHERE revision > ${since}`,
    ]);
    return {
      upserts: rows.map((r) => ({ instance: fromRow(r), revision: Number(r.revision) })),
      removed: gone.map((r) => ({
        service: String(r.service_name),
        id: String(r.instance_id),
        revision: Number(r.revision),
      })),
    };
  }
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

/**
 * `store` with every call bounded by `timeoutMs` (below the actor call timeout, so a caller
 * gets a prompt 503, not a 504) and driver failures turned into {@link BackendUnavailableError}:
 * a registry write while PostgreSQL is down is a 503 naming the store, never a 500.
 */
export function guardedStore(store: RegistryStore, timeoutMs: number): RegistryStore {
  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await withinMs(fn, timeoutMs);
    } catch (err) {
      if (err instanceof DomainError) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new BackendUnavailableError("storage", `Registry store unavailable (${what}): ${msg}`);
    }
  };
  const changes = store.changes?.bind(store);
  return {
    migrate: () => store.migrate(),
    upsert: (i) => run("upsert", () => store.upsert(i)),
    remove: (s, id) => run("remove", () => store.remove(s, id)),
    list: () => run("list", () => store.list()),
    setHealth: (s, id, h) => run("setHealth", () => store.setHealth(s, id, h)),
    heartbeat: (s, id, at) => run("heartbeat", () => store.heartbeat(s, id, at)),
    get: (s, id) => run("get", () => store.get(s, id)),
    changes: changes && ((since) => run("changes", () => changes(since))),
    close: () => store.close(),
  };
}
