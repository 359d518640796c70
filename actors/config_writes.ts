/**
 * The ConfigActor's write path: a secret value is encrypted, the store applies the write in
 * one transaction, then the caches take the new state and the other replicas are told.
 */
import type { ConfigCalls, WriteReply } from "./config_protocol.ts";
import { ValidationError } from "../lib/errors.ts";
import { type EntryCache, slotOf } from "../lib/config/cache.ts";
import { entryView, etagOf, idKey, type StoredEntry, type WriteOp } from "../lib/config/model.ts";
import type { ConfigStore } from "../lib/config/store.ts";
import type { SecretBox } from "../lib/config/secrets.ts";
import type { InvalidationChannel, L2Cache } from "../lib/config/adapters.ts";
import type { StoreGuard } from "../lib/config/store_guard.ts";

type Req<K extends keyof ConfigCalls> = ConfigCalls[K]["req"];

/** The write path's view of the actor: shared with it, never copied. */
export interface WriteDeps {
  store: ConfigStore;
  cache: EntryCache;
  l2: L2Cache;
  channel: InvalidationChannel;
  guard: StoreGuard;
  secrets: SecretBox | null;
  /** Called with each committed change's sequence, before the writer hears back. */
  committed(seq: number): void;
}

/**
 * Writes of one entry must not run concurrently (the worker's mailbox serializes them):
 * `update` reads the entry's `secret` before writing.
 */
export class ConfigWrites {
  readonly #d: WriteDeps;

  constructor(d: WriteDeps) {
    this.#d = d;
  }

  /** @throws ConflictError when the entry exists; ValidationError for a secret without key. */
  async create(r: Req<"create">): Promise<WriteReply> {
    return await this.#write({
      kind: "create",
      id: r.id,
      value: await this.#storedValue(r.value, r.secret),
      secret: r.secret,
      description: r.description,
      by: r.by,
    });
  }

  /** @throws NotFoundError, PreconditionFailedError (`ifVersion` is not current). */
  async update(r: Req<"update">): Promise<WriteReply> {
    const { cache, guard, store } = this.#d;
    // Unsaid `secret` keeps the entry's: a PUT of a new password stays a secret.
    const known = cache.peek(idKey(r.id));
    const secret = r.secret ??
      (known?.body ? known.secret : (await guard.run(() => store.get(r.id)))?.secret) ?? false;
    return await this.#write({
      kind: "update",
      id: r.id,
      value: await this.#storedValue(r.value, secret),
      secret,
      description: r.description,
      by: r.by,
      ifVersion: r.ifVersion,
    });
  }

  /** Deletes, keeping the history. @throws NotFoundError, PreconditionFailedError. */
  delete(r: Req<"delete">): Promise<WriteReply> {
    return this.#write({ kind: "delete", id: r.id, by: r.by, ifVersion: r.ifVersion });
  }

  /** A new version with an old one's value. @throws NotFoundError, PreconditionFailedError. */
  rollback(r: Req<"rollback">): Promise<WriteReply> {
    return this.#write({
      kind: "rollback",
      id: r.id,
      toVersion: r.toVersion,
      by: r.by,
      ifVersion: r.ifVersion,
    });
  }

  async #write(op: WriteOp): Promise<WriteReply> {
    const d = this.#d;
    // No fail-fast on the probe's verdict: a probe that times out under load would turn every
    // write into a 503 until the next probe. A store that is really down fails the write
    // within the pool's connect timeout.
    const res = await d.guard.run(() => d.store.write(op));
    const { change } = res;
    d.cache.written(idKey(op.id), slotOf(res.entry, change.version));
    void d.l2.putIfNewer(op.id, change.version, res.entry);
    d.channel.publish(change.seq);
    d.committed(change.seq);
    const shown: StoredEntry = res.entry ?? {
      ...op.id,
      value: change.value ?? "null",
      secret: change.secret,
      description: change.description,
      version: change.version,
      created_at: change.created_at,
      updated_at: change.updated_at,
      updated_by: change.updated_by,
    };
    const entry = entryView(shown);
    if (!res.entry) entry.deleted = true;
    return { entry, etag: etagOf(shown), seq: change.seq };
  }

  async #storedValue(value: string, secret: boolean): Promise<string> {
    if (!secret) return value;
    if (!this.#d.secrets) {
      throw new ValidationError([{
        field: "secret",
        in: "body",
        message: "secret entries need CONFIG_ENCRYPTION_KEY (base64 of 32 bytes) on every replica",
      }]);
    }
    return await this.#d.secrets.encrypt(value);
  }
}
