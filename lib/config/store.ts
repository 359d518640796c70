/**
 * `ConfigStore`: where configuration entries, their history and the change log live.
 * Implemented by {@link SqliteConfigStore} (embedded) and {@link PostgresConfigStore}.
 * Every write changes the entry, appends history and appends the change log (the Kafka
 * outbox and the watchers' replay source) in one transaction.
 */
import type { EntryId, StoredChange, StoredEntry, StoredHistory, WriteOp } from "./model.ts";

export interface ListFilter {
  environment?: string;
  /** undefined: every scope; "" the global scope only; else that service only. */
  service?: string;
  keys?: string[];
  /** Only keys starting with this text (matched literally: `_` and `%` are no wildcards). */
  prefix?: string;
  limit: number;
  offset: number;
}

/** `prefix` as a LIKE pattern with `\` as the escape character. */
export function likePrefix(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + "%";
}

export interface ChangeFilter {
  environment?: string;
  /** undefined: every scope; else that service plus the environment's global scope. */
  service?: string;
}

export interface WriteResult {
  entry: StoredEntry | null;
  change: StoredChange;
}

export interface ConfigStore {
  readonly kind: "sqlite" | "postgres";
  /** Creates or upgrades the schema (versioned, idempotent). */
  migrate(): Promise<void>;
  get(id: EntryId): Promise<StoredEntry | null>;
  /** The entries of one scope with any of `keys`. */
  getMany(environment: string, service: string, keys: string[]): Promise<StoredEntry[]>;
  list(filter: ListFilter): Promise<StoredEntry[]>;
  /**
   * Applies one write atomically.
   * @throws ConflictError, NotFoundError, PreconditionFailedError (see `planWrite`)
   */
  write(op: WriteOp): Promise<WriteResult>;
  /** Newest first. */
  history(id: EntryId, limit: number, offset: number): Promise<StoredHistory[]>;
  /** Changes with `seq > after`, oldest first. */
  changesSince(after: number, filter: ChangeFilter, limit: number): Promise<StoredChange[]>;
  /** Highest change sequence number (0 when empty). */
  maxSeq(): Promise<number>;
  /**
   * Where sequence numbers are assigned after commit (PostgreSQL): positions committed rows
   * that have none yet, e.g. those of a replica that died between commit and sequencing.
   */
  sequence?(): Promise<unknown>;
  /** Changes not yet published to Kafka, oldest first. */
  unpublished(limit: number): Promise<StoredChange[]>;
  markPublished(seqs: number[]): Promise<void>;
  /** Number of changes not yet published. */
  backlog(): Promise<number>;
  /** Deletes change-log rows older than `before` (ISO); unpublished ones only if `all`. */
  prune(before: string, all: boolean): Promise<number>;
  close(): Promise<void>;
}
