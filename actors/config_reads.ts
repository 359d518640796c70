/**
 * The ConfigActor's read path: in-memory cache, then the shared L2 cache, then the store.
 * Cache hits are answered synchronously; what a miss reads fills the caches, unless an
 * invalidation happened meanwhile.
 */
import type { GetReply } from "./config_protocol.ts";
import { BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import type { EntryCache, Slot } from "../lib/config/cache.ts";
import { slotOf } from "../lib/config/cache.ts";
import { type EntryId, entryView, etagOf, idKey, type StoredEntry } from "../lib/config/model.ts";
import type { ConfigStore } from "../lib/config/store.ts";
import type { SecretBox } from "../lib/config/secrets.ts";
import type { L2Cache } from "../lib/config/adapters.ts";
import type { StoreGuard } from "../lib/config/store_guard.ts";
import type { ConfigSnapshot } from "../lib/config/snapshot.ts";

/** The read path's view of the actor: shared with it, never copied. */
export interface ReadDeps {
  store: ConfigStore;
  cache: EntryCache;
  l2: L2Cache;
  guard: StoreGuard;
  secrets: SecretBox | null;
  /** Last-known-good entries, read while the store is unreachable. */
  snapshot?: ConfigSnapshot | null;
  /** Whether cached answers are to be marked stale (default: the store is failing). */
  stale?: () => boolean;
}

/** `stale`: known absent from the caches while the store is failing (`X-Config-Stale`). */
function notFound(id: EntryId, stale: boolean): never {
  const e = new NotFoundError(
    `No configuration ${id.key} in ${id.environment}${
      id.service ? ` for ${id.service} or its global scope` : ""
    }`,
  );
  if (stale) e.extra.stale = true;
  throw e;
}

export class ConfigReads {
  readonly #store: ConfigStore;
  readonly #cache: EntryCache;
  readonly #l2: L2Cache;
  readonly #guard: StoreGuard;
  readonly #secrets: SecretBox | null;
  readonly #snapshot: ConfigSnapshot | null;
  readonly #stale: () => boolean;

  constructor(d: ReadDeps) {
    this.#store = d.store;
    this.#cache = d.cache;
    this.#l2 = d.l2;
    this.#guard = d.guard;
    this.#secrets = d.secrets;
    this.#snapshot = d.snapshot ?? null;
    this.#stale = d.stale ?? (() => d.guard.down);
  }

  #reply(slot: Slot): GetReply {
    return { body: slot.body!, etag: slot.etag, stale: this.#stale() };
  }

  /**
   * Reads one id through L2 and the store, filling the caches: the one place a GET miss
   * fills them. While the store is unreachable, answers what outlived a restart: L2 even
   * before it was repaired, then the snapshot; such an answer is not cached (the reply is
   * stale: the guard is down).
   * @throws {BackendUnavailableError} when the store is down and neither knows the id.
   */
  async load(id: EntryId): Promise<Slot> {
    const epoch = this.#cache.epoch;
    let entry = await this.#l2.get(id);
    if (entry === undefined) {
      try {
        entry = await this.#guard.run(() => this.#store.get(id));
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        const kept = await this.#l2.get(id, { untrusted: true });
        if (kept !== undefined) return slotOf(kept);
        const last = this.#snapshot?.get(idKey(id));
        if (last) return last;
        throw err;
      }
      void this.#l2.putIfNewer(id, entry?.version ?? 0, entry);
    }
    const slot = slotOf(entry);
    // An invalidation during the read may mean what was read is already old.
    if (this.#cache.epoch === epoch) this.#cache.set(idKey(id), slot);
    return slot;
  }

  /**
   * GET: service scope, then the environment's global scope. Synchronous on cache hits.
   * @throws {NotFoundError} in neither scope; {@link BackendUnavailableError} on a miss
   *   while the store is down.
   */
  get(id: EntryId): GetReply | Promise<GetReply> {
    const cache = this.#cache;
    const global = { ...id, service: "" };
    const own = id.service ? cache.get(idKey(id)) : undefined;
    if (own?.body) return this.#reply(own);
    if (!id.service || own !== undefined) {
      const g = cache.get(idKey(global));
      if (g?.body) return this.#reply(g);
      if (g !== undefined) notFound(id, this.#stale());
    }
    return (async () => {
      if (id.service && own === undefined) {
        const s = await this.load(id);
        if (s.body) return this.#reply(s);
      }
      const g = await this.load(global);
      if (g.body) return this.#reply(g);
      notFound(id, this.#stale());
    })();
  }

  /**
   * GET with the secret value decrypted (`?reveal=true`, for a token with `secrets:read`):
   * read from the store, never cached in clear.
   */
  async reveal(id: EntryId): Promise<GetReply> {
    const run = this.#guard.run.bind(this.#guard);
    let e = id.service ? await run(() => this.#store.get(id)) : undefined;
    e ??= await run(() => this.#store.get({ ...id, service: "" }));
    if (!e) notFound(id, false);
    const view = entryView(e, true);
    if (e.secret && e.value !== null) {
      if (!this.#secrets) throw new Error("secret entry but no encryption key loaded");
      view.value = JSON.parse(await this.#secrets.decrypt(e.value));
    }
    return { body: JSON.stringify(view), etag: etagOf(e), stale: false };
  }

  /**
   * Bulk GET as a ready JSON object text `{"key": value, …}` (service scope first, then
   * global; missing keys left out). Cache hits are answered synchronously; the misses of
   * both scopes are read with one query each.
   */
  bulk(environment: string, service: string, keys: string[]): string | Promise<string> {
    const cache = this.#cache;
    const found = new Map<string, string>();
    const unknown: string[] = [];
    for (const key of keys) {
      const own = service ? cache.get(idKey({ environment, service, key })) : undefined;
      if (own?.body) {
        found.set(key, own.value);
        continue;
      }
      if (service && own === undefined) {
        unknown.push(key);
        continue;
      }
      const g = cache.get(idKey({ environment, service: "", key }));
      if (g === undefined) unknown.push(key);
      else if (g.body) found.set(key, g.value);
    }
    const render = () => {
      const parts: string[] = [];
      for (const key of keys) {
        const v = found.get(key);
        if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
      }
      return `{${parts.join(",")}}`;
    };
    if (unknown.length === 0) return render();
    return (async () => {
      const epoch = cache.epoch;
      const run = this.#guard.run.bind(this.#guard);
      const [own, global] = await Promise.all([
        service ? run(() => this.#store.getMany(environment, service, unknown)) : [],
        run(() => this.#store.getMany(environment, "", unknown)),
      ]);
      const byKey = (rows: StoredEntry[]) => new Map(rows.map((e) => [e.key, e]));
      const ownBy = byKey(own);
      const globalBy = byKey(global);
      const fill = epoch === cache.epoch;
      for (const key of unknown) {
        const o = service ? slotOf(ownBy.get(key) ?? null) : undefined;
        const g = slotOf(globalBy.get(key) ?? null);
        if (fill) {
          if (o) cache.set(idKey({ environment, service, key }), o);
          cache.set(idKey({ environment, service: "", key }), g);
        }
        const hit = o?.body ? o : g.body ? g : undefined;
        if (hit) found.set(key, hit.value);
      }
      return render();
    })();
  }
}
