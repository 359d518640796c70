/**
 * Each environment's flag definitions and how current they are: fetched from the source
 * (with ETag), stored as last-known-good with their change events in one transaction, and
 * written to the cache for other replicas; restored from the store (or the cache, when it
 * holds newer ones) at start. No actor or worker dependency: the FlagActor owns one and
 * runs each environment's syncs one at a time.
 */
import { log } from "../log.ts";
import { FlagSet } from "./engine.ts";
import type { EnvView, Freshness } from "./provider.ts";
import type { FlagSource } from "./sources.ts";
import type { FlagEvent, FlagStore, Snapshot } from "./store.ts";
import type { FlagCache } from "./cache.ts";
import { diffDocuments } from "./diff.ts";
import { sha256Hex } from "./digest.ts";
import { type EnvSnapshot, freshnessOf, type FreshnessPolicy } from "./snapshot.ts";

interface EnvState {
  set: FlagSet;
  hash: string;
  etag: string | null;
  /** When the source last confirmed these definitions in this process (ms), or null. */
  confirmedAt: number | null;
  /** When the definitions were fetched from the source (ISO). */
  syncedAt: string;
  /** False while a change is known in memory but not yet stored (store down). */
  persisted: boolean;
  lastFull: number;
}

export interface FlagDefinitionsOptions {
  source: FlagSource;
  store: FlagStore;
  cache: FlagCache;
  /** The environments kept; stored or cached definitions of any other are ignored. */
  environments: readonly string[];
  /** `UNLEASH_SYNC_INTERVAL`: seconds between two full fetches (without the ETag). */
  fullSyncSeconds: number;
  /** How long definitions stay current without the source confirming them, ms. */
  staleMs: number;
  /** `UNLEASH_AUTO_SYNC_ENABLED`: when false, definitions confirmed once stay live. */
  autoSync: boolean;
  /** Called after a change stored events in the outbox, so they can be relayed now. */
  onEvents(): void;
}

/** What one sync left: how many flags, and when the source confirmed them (ms). */
export interface SyncResult {
  flags: number;
  confirmedAt: number | null;
}

/** One environment's line in the metrics: how many flags, how current. */
export interface EnvSummary {
  environment: string;
  freshness: Freshness;
  flags: number;
}

/**
 * The definitions per environment. {@link sync} of one environment must not run twice at
 * once (the caller queues them); syncs of different environments may.
 */
export class FlagDefinitions {
  readonly #o: FlagDefinitionsOptions;
  readonly #envs = new Map<string, EnvState>();

  constructor(opts: FlagDefinitionsOptions) {
    this.#o = opts;
  }

  /** `env`'s definitions and freshness, or undefined before any were restored or fetched. */
  view(env: string): EnvView | undefined {
    const st = this.#envs.get(env);
    return st ? { set: st.set, freshness: this.#freshness(st) } : undefined;
  }

  /** Every environment that has definitions. */
  summary(): EnvSummary[] {
    return [...this.#envs].map(([environment, st]) => ({
      environment,
      freshness: this.#freshness(st),
      flags: st.set.features.size,
    }));
  }

  /**
   * Restores the last-known-good definitions: the store, or the cache when it holds newer
   * ones. A cache that cannot be read is logged and skipped.
   * @throws when the store cannot be read.
   */
  async restore(): Promise<void> {
    for (const snap of await this.#o.store.load()) this.#adopt(snap, true);
    try {
      for (const env of this.#o.environments) {
        const c = await this.#o.cache.get(env);
        if (!c) continue;
        const have = this.#envs.get(env);
        if (have && Date.parse(have.syncedAt) >= Date.parse(c.synced_at)) continue;
        this.#adopt(c, false);
      }
    } catch (err) {
      log.warn("flag cache not read", { error: (err as Error).message });
    }
  }

  /**
   * Fetches `env` from the source (in full when `force`, or when the last full fetch is
   * `fullSyncSeconds` old; else with the ETag) and applies what changed.
   * @throws {Error} when the source cannot be read or answers what cannot be parsed.
   */
  async sync(env: string, force: boolean, signal: AbortSignal): Promise<SyncResult> {
    const { source, store } = this.#o;
    const st = this.#envs.get(env);
    const full = force || !st || Date.now() - st.lastFull >= this.#o.fullSyncSeconds * 1000;
    const r = await source.fetch(env, full ? null : st?.etag ?? null, signal);
    const now = new Date().toISOString();
    if (r.status === 304 && st) {
      st.confirmedAt = Date.now();
      st.etag = r.etag;
      if (!st.persisted) await this.#persist(env, st);
      return result(st);
    }
    if (r.status === 304) throw new Error(`${source.kind} answered 304 to a first fetch of ${env}`);
    const set = FlagSet.from(r.doc, `${source.kind} ${env}`);
    const hash = await sha256Hex(JSON.stringify(set.toDocument()));
    if (st && st.hash === hash) {
      Object.assign(st, {
        confirmedAt: Date.now(),
        etag: r.etag,
        lastFull: full ? Date.now() : st.lastFull,
      });
      if (!st.persisted) await this.#persist(env, st);
      else if (full) await store.touch(env, r.etag, now).catch(() => {});
      return result(st);
    }
    const next: EnvState = {
      set,
      hash,
      etag: r.etag,
      confirmedAt: Date.now(),
      syncedAt: now,
      persisted: false,
      lastFull: full ? Date.now() : (st?.lastFull ?? Date.now()),
    };
    this.#envs.set(env, next);
    log.info("flag definitions changed", {
      environment: env,
      flags: set.features.size,
      source: source.kind,
    });
    await this.#persist(env, next);
    return result(next);
  }

  /** How freshness is derived from the facts a {@link publication} carries. */
  get policy(): FreshnessPolicy {
    return { source: this.#o.source.kind, stale_ms: this.#o.staleMs, auto_sync: this.#o.autoSync };
  }

  /**
   * `env`'s definitions as the HTTP thread is given them: the hash and freshness facts, and
   * the document (JSON text) when `withDoc`. Undefined before any were restored or fetched.
   */
  publication(env: string, withDoc: boolean): EnvSnapshot | undefined {
    const st = this.#envs.get(env);
    if (!st) return undefined;
    const out: EnvSnapshot = {
      environment: env,
      hash: st.hash,
      synced_at: st.syncedAt,
      confirmed_at: st.confirmedAt,
    };
    if (withDoc) out.doc = JSON.stringify(st.set.toDocument());
    return out;
  }

  #freshness(st: EnvState): Freshness {
    return freshnessOf({ synced_at: st.syncedAt, confirmed_at: st.confirmedAt }, this.policy);
  }

  /** Stores the definitions with their change events, then writes them to the cache. */
  async #persist(env: string, st: EnvState): Promise<void> {
    const doc = JSON.stringify(st.set.toDocument());
    const snap: Snapshot = {
      environment: env,
      hash: st.hash,
      etag: st.etag,
      doc,
      synced_at: st.syncedAt,
    };
    let events: FlagEvent[] = [];
    try {
      events = await this.#o.store.save(
        snap,
        (prev) => diffDocuments(prev, doc, env, new Date().toISOString()),
      );
      st.persisted = true;
    } catch (err) {
      log.warn("flag definitions not stored; retrying at the next poll", {
        environment: env,
        error: (err as Error).message,
      });
    }
    if (events.length > 0) {
      for (const e of events) log.info("flag changed", { ...e });
      this.#o.onEvents();
    }
    // The cache is best effort: a replica that misses it syncs from the source.
    await this.#o.cache.put(snap).catch(() => {});
  }

  #adopt(snap: Snapshot, persisted: boolean): void {
    if (!this.#o.environments.includes(snap.environment)) return;
    try {
      this.#envs.set(snap.environment, {
        set: FlagSet.from(JSON.parse(snap.doc), `stored ${snap.environment}`),
        hash: snap.hash,
        etag: snap.etag,
        confirmedAt: null,
        syncedAt: snap.synced_at,
        persisted,
        lastFull: 0,
      });
    } catch (err) {
      log.warn("stored flag definitions unreadable", {
        environment: snap.environment,
        error: (err as Error).message,
      });
    }
  }
}

function result(st: EnvState): SyncResult {
  return { flags: st.set.features.size, confirmedAt: st.confirmedAt };
}
