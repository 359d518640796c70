/** ConfigActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { ChangeView, EntryId } from "../lib/config/model.ts";

type NoFields = Record<never, never>;

/** A GET answer: the JSON document, its ETag, and whether it came from cache while the
 * store is down. */
export interface GetReply {
  body: string;
  etag: string;
  stale: boolean;
}

/** A list answer: the JSON array of entries (masked) and the change index it reflects. */
export interface ListReply {
  body: string;
  index: number;
}

/** A write answer: the entry document (masked), its ETag, and the change sequence. */
export interface WriteReply {
  entry: Record<string, unknown>;
  etag: string;
  seq: number;
}

export type ConfigCalls = CommonCalls & {
  /** Resolves service → global. Throws NotFoundError. */
  get: { req: { id: EntryId }; res: GetReply };
  /** GET with a secret's value decrypted (the route checks `secrets:read`). */
  reveal: { req: { id: EntryId }; res: GetReply };
  /**
   * JSON object text key → value of the keys found (service scope first, then global);
   * `stale` as for `get`.
   */
  bulk: {
    req: { environment: string; service: string; keys: string[] };
    res: { body: string; stale: boolean };
  };
  list: {
    req: {
      environment?: string;
      service?: string;
      keys?: string[];
      /** Only keys starting with this text. */
      prefix?: string;
      limit: number;
      offset: number;
    };
    res: ListReply;
  };
  create: {
    req: { id: EntryId; value: string; secret: boolean; description: string | null; by: string };
    res: WriteReply;
  };
  update: {
    req: {
      id: EntryId;
      value: string;
      secret?: boolean;
      description?: string | null;
      by: string;
      ifVersion?: number;
    };
    res: WriteReply;
  };
  delete: { req: { id: EntryId; by: string; ifVersion?: number }; res: WriteReply };
  rollback: {
    req: { id: EntryId; toVersion: number; by: string; ifVersion?: number };
    res: WriteReply;
  };
  history: {
    req: { id: EntryId; limit: number; offset: number };
    res: Record<string, unknown>[];
  };
  /** Changes after `after` (oldest first) for watchers' replay. */
  changes: {
    req: { after: number; environment?: string; service?: string; limit: number };
    res: ChangeView[];
  };
  /** Highest change sequence. */
  index: { req: NoFields; res: number };
  /** Outbox state: unpublished changes and whether Kafka relaying is on. */
  outbox: { req: NoFields; res: { backlog: number; relaying: boolean } };
  /** Self-messages. */
  tail: { req: NoFields; res: void };
  tail_tick: { req: NoFields; res: void };
  relay: { req: NoFields; res: void };
  /** Self-message: the periodic relay round, which schedules the next one. */
  relay_tick: { req: NoFields; res: void };
  /** Self-message: run migrations again after the store was unreachable at start. */
  open: { req: NoFields; res: void };
  prune: { req: NoFields; res: void };
};

/** ConfigActor events. */
export type ConfigEvent =
  /** Committed configuration changes, in sequence order, for watchers. */
  | { type: "config_changes"; changes: ChangeView[] }
  /** The configuration store started or stopped failing (cached answers are stale). */
  | { type: "config_store"; failing: boolean }
  /** A tail round that began at `at` (Date.now()) succeeded: cached answers are current. */
  | { type: "config_tailed"; at: number };
