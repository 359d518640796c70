/**
 * The ConfigActor's in-memory cache: entries (and known absences) by id, bounded, least
 * recently used first out. A cached read never touches the store.
 */
import { entryView, etagOf, MASK, type StoredEntry } from "./model.ts";

/**
 * What the cache keeps of an entry: the GET document ready to send (secrets masked) and the
 * few fields the actor decides on. Nothing else: at 100,000 entries every field counts.
 */
export interface Slot {
  /** The GET document; null when the entry is known not to exist. */
  body: string | null;
  /** JSON text of the value as shown (secrets masked), for bulk answers. */
  value: string;
  etag: string;
  version: number;
  secret: boolean;
}

/**
 * The slot for an entry as read or written (null: known absent). `absentAt`: the version of
 * the deletion that made it absent, when known (a write or a change); a store read of a
 * missing entry does not know it (0).
 */
export function slotOf(e: StoredEntry | null, absentAt = 0): Slot {
  if (!e) return { body: null, value: "null", etag: "", version: absentAt, secret: false };
  return {
    body: JSON.stringify(entryView(e, true)),
    value: e.secret ? JSON.stringify(MASK) : e.value,
    etag: etagOf(e),
    version: e.version,
    secret: e.secret,
  };
}

export class EntryCache {
  readonly #max: number;
  #map = new Map<string, Slot>();
  /** Bumped by every invalidation: a store read that spans one must not fill the cache. */
  epoch = 0;
  /** Bumped by every change of content (a snapshot's cue to look again). */
  changes = 0;
  hits = 0;
  misses = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): Slot | undefined {
    const s = this.#map.get(key);
    if (s === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert to mark as recently used (Map keeps insertion order).
    this.#map.delete(key);
    this.#map.set(key, s);
    return s;
  }

  /** Every cached slot by key, least recently used first; no hits counted. */
  entries(): IterableIterator<[string, Slot]> {
    return this.#map.entries();
  }

  /** Looks without counting a hit or refreshing recency. */
  peek(key: string): Slot | undefined {
    return this.#map.get(key);
  }

  set(key: string, slot: Slot): void {
    if (this.#max === 0) return;
    this.changes++;
    this.#map.delete(key);
    this.#map.set(key, slot);
    while (this.#map.size > this.#max) {
      this.#map.delete(this.#map.keys().next().value!);
    }
  }

  /**
   * Caches what this actor just wrote, or a change the tail read, unless a newer version is
   * cached already: a write's reply can come back after the tail cached another replica's
   * later write to the same id, and caching the reply over it answered the older version
   * (or a 404 for a delete) without `X-Config-Stale` until the id changed again (found by the
   * chaos run). Also an invalidation for reads under way: one that began before the write and
   * ends after it read the older version and must not cache it.
   */
  written(key: string, slot: Slot): void {
    this.epoch++;
    const cur = this.#map.get(key);
    if (cur === undefined || cur.version <= slot.version) this.set(key, slot);
  }

  /** Drops one id (another replica changed it). */
  invalidate(key: string): void {
    this.epoch++;
    this.changes++;
    this.#map.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.changes++;
    this.#map.clear();
  }
}
