/** The PostgreSQL `ConfigStore` through `npm:postgres`. */
import { type Sql, transaction } from "../backends/postgres.ts";
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
import { describeId } from "./model.ts";
import { ConflictError } from "../errors.ts";

/**
 * Held by the one sequencer run at a time that gives committed change-log rows their
 * delivery position (`pos`, exposed as `seq`).
 */
const SEQUENCER_LOCK = 727_274_001;
/** Rows one sequencer run positions at most. */
const SEQUENCE_BATCH = 5_000;
/** First key of the two-key advisory locks that serialize writes to one id. */
const ID_LOCK_SPACE = 727_274;

const MIGRATIONS: string[] = [
  `CREATE TABLE IF NOT EXISTS config_entries (
     environment text NOT NULL, service text NOT NULL, key text NOT NULL,
     value text NOT NULL, secret boolean NOT NULL DEFAULT false, description text,
     version integer NOT NULL, created_at text NOT NULL, updated_at text NOT NULL,
     updated_by text NOT NULL,
     PRIMARY KEY (environment, service, key));
   CREATE TABLE IF NOT EXISTS config_history (
     environment text NOT NULL, service text NOT NULL, key text NOT NULL,
     version integer NOT NULL, change_type text NOT NULL, value text,
     secret boolean NOT NULL DEFAULT false, description text,
     updated_at text NOT NULL, updated_by text NOT NULL,
     PRIMARY KEY (environment, service, key, version));
   CREATE TABLE IF NOT EXISTS config_changes (
     seq bigserial PRIMARY KEY, event_id uuid NOT NULL UNIQUE,
     type text NOT NULL, environment text NOT NULL, service text NOT NULL, key text NOT NULL,
     version integer NOT NULL, value text, secret boolean NOT NULL DEFAULT false,
     description text, created_at text NOT NULL, updated_at text NOT NULL,
     updated_by text NOT NULL, published boolean NOT NULL DEFAULT false);
   CREATE INDEX IF NOT EXISTS config_changes_unpublished ON config_changes (seq)
     WHERE NOT published;`,
  // Delivery positions assigned after commit by the sequencer (see sequence()); the column
  // seq stays the insertion order.
  `ALTER TABLE config_changes ADD COLUMN IF NOT EXISTS pos bigint;
   UPDATE config_changes SET pos = seq WHERE pos IS NULL;
   CREATE UNIQUE INDEX IF NOT EXISTS config_changes_pos ON config_changes (pos);
   CREATE INDEX IF NOT EXISTS config_changes_unsequenced ON config_changes (seq)
     WHERE pos IS NULL;
   DROP INDEX IF EXISTS config_changes_unpublished;
   CREATE INDEX IF NOT EXISTS config_changes_unpublished_pos ON config_changes (pos)
     WHERE NOT published AND pos IS NOT NULL;`,
];

type Row = Record<string, unknown>;

export class PostgresConfigStore implements ConfigStore {
  readonly kind = "postgres";
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async migrate(): Promise<void> {
    const sql = this.#sql;
    await transaction(sql, async (tx) => {
      // One migrator at a time across replicas.
      await tx`SELECT pg_advisory_xact_lock(727274000)`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, applied_at text NOT NULL)`;
      const done = new Set(
        (await tx`SELECT version FROM schema_migrations`).map((r) => Number(r.version)),
      );
      for (const [i, ddl] of MIGRATIONS.entries()) {
        if (done.has(i + 1)) continue;
        await tx.unsafe(ddl);
        await tx`INSERT INTO schema_migrations VALUES (${i + 1}, ${new Date().toISOString()})`;
      }
    });
  }

  async get(id: EntryId): Promise<StoredEntry | null> {
    const rows = await this.#sql`SELECT * FROM config_entries
      WHERE environment = ${id.environment} AND service = ${id.service} AND key = ${id.key}`;
    return rows.length ? entryFromRow(rows[0]) : null;
  }

  async getMany(environment: string, service: string, keys: string[]): Promise<StoredEntry[]> {
    if (keys.length === 0) return [];
    const rows = await this.#sql`SELECT * FROM config_entries
      WHERE environment = ${environment} AND service = ${service} AND key = ANY(${keys})`;
    return rows.map(entryFromRow);
  }

  async list(f: ListFilter): Promise<StoredEntry[]> {
    const sql = this.#sql;
    const rows = await sql`SELECT * FROM config_entries WHERE true
      ${f.environment !== undefined ? sql`AND environment = ${f.environment}` : sql``}
      ${f.service !== undefined ? sql`AND service = ${f.service}` : sql``}
      ${f.keys && f.keys.length ? sql`AND key = ANY(${f.keys})` : sql``}
      ${f.prefix ? sql`AND key LIKE ${likePrefix(f.prefix)} ESCAPE '\\'` : sql``}
      ORDER BY environment, service, key LIMIT ${f.limit} OFFSET ${f.offset}`;
    return rows.map(entryFromRow);
  }

  async write(op: WriteOp): Promise<WriteResult> {
    const id = op.id;
    try {
      const res = await transaction(this.#sql, async (tx) => {
        // Per-id lock before any read: under READ COMMITTED a FOR UPDATE on a row that does
        // not exist yet locks nothing, so two creates (or a create and a rollback of a
        // deleted entry) would both plan a write and the upsert would hide the conflict.
        await tx`SELECT pg_advisory_xact_lock(${ID_LOCK_SPACE},
          hashtext(${id.environment} || chr(1) || ${id.service} || chr(1) || ${id.key}))`;
        // One round trip for everything the plan needs (the id lock makes FOR UPDATE moot).
        const where = tx`environment = ${id.environment} AND service = ${id.service}
          AND key = ${id.key}`;
        const [state] = await tx`SELECT
          (SELECT row_to_json(e) FROM config_entries e WHERE ${where}) AS current,
          (SELECT COALESCE(MAX(version), 0) FROM config_history WHERE ${where}) AS last,
          ${
          op.kind === "rollback"
            ? tx`(SELECT row_to_json(h) FROM config_history h WHERE ${where}
                AND version = ${op.toVersion})`
            : tx`NULL::json`
        } AS target`;
        const plan = planWrite(
          op,
          {
            current: state.current ? entryFromRow(state.current as Row) : null,
            lastVersion: Number(state.last),
            target: state.target ? historyFromRow(state.target as Row) : null,
          },
          new Date().toISOString(),
          crypto.randomUUID(),
        );
        const e = plan.entry;
        const entryWrite = e
          ? tx`INSERT INTO config_entries ${tx({ ...e })}
              ON CONFLICT (environment, service, key) DO UPDATE SET value = excluded.value,
              secret = excluded.secret, description = excluded.description,
              version = excluded.version, updated_at = excluded.updated_at,
              updated_by = excluded.updated_by`
          : tx`DELETE FROM config_entries WHERE ${where}`;
        // Entry, history and change log in one statement; the change gets its delivery
        // position from the sequencer once committed.
        const r = await tx`WITH e AS (${entryWrite}),
          h AS (INSERT INTO config_history ${tx({ ...plan.history })})
          INSERT INTO config_changes ${tx({ ...plan.change })} RETURNING seq`;
        return { entry: e, change: plan.change, row: Number(r[0].seq) };
      });
      return { entry: res.entry, change: { ...res.change, seq: await this.#positionOf(res.row) } };
    } catch (err) {
      // A unique violation can only come from a concurrent write to the same id.
      if ((err as { code?: string }).code === "23505") {
        throw new ConflictError(`${describeId(id)} was changed concurrently; retry`);
      }
      throw err;
    }
  }

  #run: Promise<Map<number, number>> | null = null;
  #next: Promise<Map<number, number>> | null = null;

  /**
   * Gives committed, unpositioned change-log rows the next delivery positions, in insertion
   * order, under a transaction lock: positions become visible only in increasing order, so
   * a reader that sees position n has seen every position below n, while writers commit
   * (and fsync) in parallel instead of one at a time. Concurrent callers share runs: a
   * caller joins the next run that starts after its call, so its own commit is included.
   * Resolves with row → position for the rows this run positioned.
   */
  sequence(): Promise<Map<number, number>> {
    if (!this.#run) {
      this.#run = this.#sequenceOnce().finally(() => this.#run = null);
      return this.#run;
    }
    this.#next ??= this.#run.catch(() => {}).then(() => {
      this.#next = null;
      return this.sequence();
    });
    return this.#next;
  }

  async #sequenceOnce(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    while (true) {
      const rows = await transaction(this.#sql, async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SEQUENCER_LOCK})`;
        return await tx`WITH todo AS (
            SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM (
              SELECT seq FROM config_changes WHERE pos IS NULL ORDER BY seq
              LIMIT ${SEQUENCE_BATCH}) u),
          base AS (SELECT COALESCE(MAX(pos), 0) AS m FROM config_changes)
          UPDATE config_changes c SET pos = base.m + todo.rn FROM todo, base
          WHERE c.seq = todo.seq RETURNING c.seq, c.pos`;
      });
      for (const r of rows) out.set(Number(r.seq), Number(r.pos));
      if (rows.length < SEQUENCE_BATCH) return out;
    }
  }

  async #positionOf(row: number): Promise<number> {
    const pos = (await this.sequence()).get(row);
    if (pos !== undefined) return pos;
    // Another replica's sequencer positioned it; its run committed before ours began.
    const [r] = await this.#sql`SELECT pos FROM config_changes WHERE seq = ${row}`;
    return Number(r?.pos ?? 0);
  }

  async history(id: EntryId, limit: number, offset: number): Promise<StoredHistory[]> {
    const rows = await this.#sql`SELECT * FROM config_history
      WHERE environment = ${id.environment} AND service = ${id.service} AND key = ${id.key}
      ORDER BY version DESC LIMIT ${limit} OFFSET ${offset}`;
    return rows.map(historyFromRow);
  }

  async changesSince(after: number, f: ChangeFilter, limit: number): Promise<StoredChange[]> {
    const sql = this.#sql;
    const rows = await sql`SELECT * FROM config_changes WHERE pos > ${after}
      ${f.environment !== undefined ? sql`AND environment = ${f.environment}` : sql``}
      ${f.service !== undefined ? sql`AND service IN (${f.service}, '')` : sql``}
      ORDER BY pos LIMIT ${limit}`;
    return rows.map((r) => changeFromRow(r, "pos"));
  }

  async maxSeq(): Promise<number> {
    const r = await this.#sql`SELECT COALESCE(MAX(pos), 0) AS s FROM config_changes`;
    return Number(r[0].s);
  }

  async unpublished(limit: number): Promise<StoredChange[]> {
    // Positioned rows only: per key, position order is commit order.
    const rows = await this.#sql`SELECT * FROM config_changes
      WHERE NOT published AND pos IS NOT NULL ORDER BY pos LIMIT ${limit}`;
    return rows.map((r) => changeFromRow(r, "pos"));
  }

  async markPublished(seqs: number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.#sql`UPDATE config_changes SET published = true WHERE pos = ANY(${seqs})`;
  }

  async backlog(): Promise<number> {
    const r = await this.#sql`SELECT COUNT(*) AS n FROM config_changes WHERE NOT published`;

    return Number(r[0].n);
  }

  async prune(before: string, all: boolean): Promise<number> {
    const sql = this.#sql;
    const r = await sql`DELETE FROM config_changes WHERE updated_at < ${before}
      ${all ? sql`` : sql`AND published`}
      AND pos < (SELECT MAX(pos) FROM config_changes)`;
    return r.count;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}
