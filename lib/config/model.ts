/**
 * Configuration entries: identity, stored form, views, and the pure write planner shared by
 * the SQLite and PostgreSQL stores. The global scope of an environment is stored as the
 * service name "" and shown as `null`.
 */
import { ConflictError, NotFoundError, PreconditionFailedError } from "../errors.ts";

/** `(environment, service_name, key)`; `service` is "" for the environment's global scope. */
export interface EntryId {
  environment: string;
  service: string;
  key: string;
}

/** An entry as stored. `value` is JSON text, or an encrypted envelope when `secret`. */
export interface StoredEntry extends EntryId {
  value: string;
  secret: boolean;
  description: string | null;
  version: number;
  created_at: string;
  updated_at: string;
  updated_by: string;
}

export type ChangeType = "created" | "updated" | "deleted" | "rolled_back";

/** One row of the change log: outbox for Kafka and replay source for watchers. */
export interface StoredChange extends EntryId {
  seq: number;
  event_id: string;
  type: ChangeType;
  version: number;
  /** Stored value text after the change; null for deletions. */
  value: string | null;
  secret: boolean;
  description: string | null;
  created_at: string;
  updated_at: string;
  updated_by: string;
}

/** One row of an entry's history. */
export interface StoredHistory extends EntryId {
  version: number;
  change_type: ChangeType;
  value: string | null;
  secret: boolean;
  description: string | null;
  updated_at: string;
  updated_by: string;
}

/** A write as the API asks for it; `value` already in stored form (encrypted if secret). */
export type WriteOp =
  | {
    kind: "create";
    id: EntryId;
    value: string;
    secret: boolean;
    description: string | null;
    by: string;
  }
  | {
    kind: "update";
    id: EntryId;
    value: string;
    secret: boolean;
    /** undefined keeps the current description. */
    description?: string | null;
    by: string;
    ifVersion?: number;
  }
  | { kind: "delete"; id: EntryId; by: string; ifVersion?: number }
  | { kind: "rollback"; id: EntryId; toVersion: number; by: string; ifVersion?: number };

/** What a store must read before planning a write. */
export interface WriteState {
  current: StoredEntry | null;
  /** Highest version ever recorded in history for the id (0 if none). */
  lastVersion: number;
  /** For rollback: the history row of the target version. */
  target?: StoredHistory | null;
}

/** What a store must write, all in one transaction. */
export interface WritePlan {
  /** The entry after the write, or null when it is deleted. */
  entry: StoredEntry | null;
  history: StoredHistory;
  change: Omit<StoredChange, "seq">;
}

function checkVersion(op: { ifVersion?: number }, current: StoredEntry): void {
  if (op.ifVersion !== undefined && op.ifVersion !== current.version) {
    throw new PreconditionFailedError(
      `If-Match names version ${op.ifVersion} but the entry is at version ${current.version}`,
    );
  }
}

export function describeId(id: EntryId): string {
  return `${id.key} in ${id.environment}${id.service ? `/${id.service}` : " (global)"}`;
}

/**
 * Decides the outcome of a write from the state read in the same transaction. Versions
 * never repeat for an id, even across delete and re-create, so an ETag names one content.
 * @throws {ConflictError} create of an existing entry
 * @throws {NotFoundError} update/delete of a missing entry, rollback to a missing version
 * @throws {PreconditionFailedError} `ifVersion` differs from the current version
 */
export function planWrite(op: WriteOp, s: WriteState, now: string, eventId: string): WritePlan {
  const { current } = s;
  const next = Math.max(s.lastVersion, current?.version ?? 0) + 1;
  let entry: StoredEntry | null;
  let type: ChangeType;
  switch (op.kind) {
    case "create":
      if (current) throw new ConflictError(`${describeId(op.id)} already exists; use PUT`);
      entry = {
        ...op.id,
        value: op.value,
        secret: op.secret,
        description: op.description,
        version: next,
        created_at: now,
        updated_at: now,
        updated_by: op.by,
      };
      type = "created";
      break;
    case "update":
      if (!current) throw new NotFoundError(`${describeId(op.id)} does not exist`);
      checkVersion(op, current);
      entry = {
        ...current,
        value: op.value,
        secret: op.secret,
        description: op.description === undefined ? current.description : op.description,
        version: next,
        updated_at: now,
        updated_by: op.by,
      };
      type = "updated";
      break;
    case "delete":
      if (!current) throw new NotFoundError(`${describeId(op.id)} does not exist`);
      checkVersion(op, current);
      entry = null;
      type = "deleted";
      break;
    case "rollback": {
      if (current) checkVersion(op, current);
      const t = s.target;
      if (!t || t.value === null) {
        throw new NotFoundError(
          `${describeId(op.id)} has no version ${op.toVersion} with a value to roll back to`,
        );
      }
      entry = {
        ...op.id,
        value: t.value,
        secret: t.secret,
        description: t.description,
        version: next,
        created_at: current?.created_at ?? now,
        updated_at: now,
        updated_by: op.by,
      };
      type = "rolled_back";
      break;
    }
    default: {
      const never: never = op;
      throw new Error(`unknown write ${JSON.stringify(never)}`);
    }
  }
  const after = entry ?? current!;
  const history: StoredHistory = {
    ...op.id,
    version: next,
    change_type: type,
    value: entry?.value ?? null,
    secret: after.secret,
    description: after.description,
    updated_at: now,
    updated_by: op.by,
  };
  return {
    entry,
    history,
    change: {
      ...op.id,
      event_id: eventId,
      type,
      version: next,
      value: entry?.value ?? null,
      secret: after.secret,
      description: after.description,
      created_at: after.created_at,
      updated_at: now,
      updated_by: op.by,
    },
  };
}

/** Shown in place of a secret value. */
export const MASK = "******";

/** Parses stored JSON text; secrets are masked (their text is ciphertext). */
export function shownValue(value: string | null, secret: boolean): unknown {
  if (value === null) return null;
  return secret ? MASK : JSON.parse(value);
}

/** The API view of an entry (`scope` only on reads that resolve scopes). */
export function entryView(e: StoredEntry, withScope = false) {
  const view: Record<string, unknown> = {
    key: e.key,
    value: shownValue(e.value, e.secret),
    environment: e.environment,
    service_name: e.service || null,
    description: e.description,
    secret: e.secret,
    version: e.version,
    created_at: e.created_at,
    updated_at: e.updated_at,
    updated_by: e.updated_by,
  };
  if (withScope) view.scope = e.service ? "service" : "global";
  return view;
}

export function historyView(h: StoredHistory) {
  return {
    key: h.key,
    value: shownValue(h.value, h.secret),
    environment: h.environment,
    service_name: h.service || null,
    version: h.version,
    change_type: h.change_type,
    description: h.description,
    secret: h.secret,
    updated_at: h.updated_at,
    updated_by: h.updated_by,
  };
}

/** A change as watchers and events see it (secret values masked). */
export function changeView(c: StoredChange) {
  return {
    seq: c.seq,
    event_id: c.event_id,
    type: c.type,
    key: c.key,
    environment: c.environment,
    service_name: c.service || null,
    version: c.version,
    value: c.value === null ? null : shownValue(c.value, c.secret),
    secret: c.secret,
    description: c.description,
    updated_by: c.updated_by,
    updated_at: c.updated_at,
  };
}
export type ChangeView = ReturnType<typeof changeView>;

/** The strong ETag of a read: scope letter + version (versions never repeat for an id). */
export function etagOf(e: StoredEntry): string {
  return `"${e.service ? "s" : "g"}${e.version}"`;
}

/** The entry a change leaves behind (null after a delete). */
export function changeEntry(c: StoredChange): StoredEntry | null {
  if (c.value === null) return null;
  return {
    environment: c.environment,
    service: c.service,
    key: c.key,
    value: c.value,
    secret: c.secret,
    description: c.description,
    version: c.version,
    created_at: c.created_at,
    updated_at: c.updated_at,
    updated_by: c.updated_by,
  };
}

/** Cache/identity key of an id. */
export function idKey(id: EntryId): string {
  return `${id.environment}\u0000${id.service}\u0000${id.key}`;
}

type Row = Record<string, unknown>;
const text = (v: unknown) => (v as string | null | undefined) ?? null;

/** A row of config_entries (SQLite or PostgreSQL) as an entry. */
export function entryFromRow(r: Row): StoredEntry {
  return {
    environment: r.environment as string,
    service: r.service as string,
    key: r.key as string,
    value: r.value as string,
    // SQLite answers 1/0, PostgreSQL true/false.
    secret: Boolean(r.secret),
    description: text(r.description),
    version: Number(r.version),
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
    updated_by: r.updated_by as string,
  };
}

/** A row of config_history as a history item. */
export function historyFromRow(r: Row): StoredHistory {
  return {
    environment: r.environment as string,
    service: r.service as string,
    key: r.key as string,
    version: Number(r.version),
    change_type: r.change_type as ChangeType,
    value: text(r.value),
    secret: Boolean(r.secret),
    description: text(r.description),
    updated_at: r.updated_at as string,
    updated_by: r.updated_by as string,
  };
}

/** A row of config_changes as a change; `seqColumn` holds its delivery sequence. */
export function changeFromRow(r: Row, seqColumn = "seq"): StoredChange {
  return {
    seq: Number(r[seqColumn]),
    event_id: r.event_id as string,
    type: r.type as ChangeType,
    environment: r.environment as string,
    service: r.service as string,
    key: r.key as string,
    version: Number(r.version),
    value: text(r.value),
    secret: Boolean(r.secret),
    description: text(r.description),
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
    updated_by: r.updated_by as string,
  };
}

/** A change as published to Kafka: no value for secrets and deletions. */
export function eventView(c: StoredChange) {
  const { seq: _seq, description: _d, value, ...rest } = changeView(c);
  return c.secret || c.value === null ? rest : { ...rest, value };
}

/**
 * How long after the start of the last successful tail round cached answers stay current:
 * past it (the worker was paused or starved, or the store is failing) a read first tails
 * again, and answers stale (`X-Config-Stale`) if that fails. So an answer not marked stale
 * holds every write another replica acknowledged more than this long before it.
 */
export const FRESH_MS = 750;
/** How long a read waits for a tail round past FRESH_MS before answering stale, ms. */
export const FRESH_WAIT_MS = 300;
