/**
 * The ConfigActor's in-memory cache: entries (and known absences) by id, bounded, least
 * recently used first out. A cached read never touches the store.
 */
import type { StoredEntry } from "./model.ts";

export interface Slot {
  /** null: known not to exist. */
  entry: StoredEntry | null;
  /** The GET document, built once per version. */
  body?: string;
}

export class EntryCache {
  readonly #max: number;
  #map = new Map<string, Slot>();
  /** Bumped by every invalidation: a store read that spans one must not fill the cache. */
  epoch = 0;
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

  set(key: string, slot: Slot): void {
    if (this.#max === 0) return;
    this.#map.delete(key);
    this.#map.set(key, slot);
    while (this.#map.size > this.#max) {
      this.#map.delete(this.#map.keys().next().value!);
    }
  }

  /** Drops one id (another replica changed it). */
  invalidate(key: string): void {
    this.epoch++;
    this.#map.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.#map.clear();
  }
}
