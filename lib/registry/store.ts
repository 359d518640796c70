/**
 * Durable registration records: the source of truth the ZooKeeper ephemerals are rebuilt
 * from (on reconnect, session expiry and restart), heartbeat state included. SQLite in
 * embedded mode, PostgreSQL otherwise; one table, so both implementations share the SQL text
 * where they can.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Sql } from "../backends/postgres.ts";
import type { Instance, InstanceStatus } from "./model.ts";

/** What a health outcome or a heartbeat changes in a record. */
export type HealthFields = Pick<
  Instance,
  "status" | "last_health_check" | "unhealthy_since" | "missed_heartbeat"
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
  /** Writes the health fields (`missed_heartbeat` absent is written as null). */
  setHealth(service: string, id: string, h: HealthFields): Promise<void>;
  /** Resolves true when the instance exists. */
  heartbeat(service: string, id: string, at: string): Promise<boolean>;
  close(): Promise<void>;
}

const DDL = `CREATE TABLE IF NOT EXISTS registry_instances (
  service_name TEXT NOT NULL, instance_id TEXT NOT NULL, service_url TEXT NOT NULL,
  health_check_url TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL,
  last_health_check TEXT, registered_at TEXT NOT NULL, ttl_seconds INTEGER,
  last_heartbeat TEXT, unhealthy_since TEXT, missed_heartbeat TEXT,
  PRIMARY KEY (service_name, instance_id))`;

/** Columns added after the table's first release: name → SQL type, for existing tables. */
const ADDED_COLUMNS = { missed_heartbeat: "TEXT" } as const;

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
] as const;

function toRow(i: Instance): Record<(typeof COLUMNS)[number], string | number | null> {
  return {
    ...i,
    metadata: JSON.stringify(i.metadata),
    missed_heartbeat: i.missed_heartbeat ?? null,
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
      `UPDATE registry_instances SET status = ?, last_health_check = ?, unhealthy_since = ?,
       missed_heartbeat = ? WHERE service_name = ? AND instance_id = ?`,
    ).run(
      h.status,
      h.last_health_check,
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
  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}

export class PostgresRegistryStore implements RegistryStore {
  readonly #sql: Sql;
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
  }
  async upsert(i: Instance): Promise<boolean> {
    const row = toRow(i);
    const r = await this.#sql`INSERT INTO registry_instances ${this.#sql(row, ...COLUMNS)}
      ON CONFLICT (service_name, instance_id) DO UPDATE SET
        service_url = excluded.service_url, health_check_url = excluded.health_check_url,
        metadata = excluded.metadata, status = excluded.status,
        last_health_check = excluded.last_health_check, ttl_seconds = excluded.ttl_seconds,
        last_heartbeat = excluded.last_heartbeat, unhealthy_since = excluded.unhealthy_since,
        missed_heartbeat = excluded.missed_heartbeat
      RETURNING (xmax = 0) AS inserted`;
    return Boolean(r[0].inserted);
  }
  async remove(service: string, id: string): Promise<boolean> {
    const r = await this.#sql`DELETE FROM registry_instances
      WHERE service_name = ${service} AND instance_id = ${id}`;
    return r.count > 0;
  }
  async list(): Promise<Instance[]> {
    const rows = await this.#sql`SELECT * FROM registry_instances
      ORDER BY service_name, instance_id`;
    return rows.map(fromRow);
  }
  async setHealth(service: string, id: string, h: HealthFields): Promise<void> {
    await this.#sql`UPDATE registry_instances SET status = ${h.status},
      last_health_check = ${h.last_health_check}, unhealthy_since = ${h.unhealthy_since},
      missed_heartbeat = ${h.missed_heartbeat ?? null}
      WHERE service_name = ${service} AND instance_id = ${id}`;
  }
  async heartbeat(service: string, id: string, at: string): Promise<boolean> {
    const r = await this.#sql`UPDATE registry_instances SET last_heartbeat = ${at}
      WHERE service_name = ${service} AND instance_id = ${id}`;
    return r.count > 0;
  }
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}
