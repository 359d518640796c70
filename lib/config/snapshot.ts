/**
 * The ConfigActor's last-known-good snapshot: the entries its cache held, kept in a file in
 * `DATA_DIR`, so that an actor started (or restarted after a crash) while its store is
 * unreachable still answers the reads it answered before — flagged stale.
 *
 * What is kept is the cache's {@link Slot}: the GET document as served, secrets masked. No
 * secret value, clear or encrypted, is ever written. Known absences are kept too (a GET
 * falls back from the service scope to the global one on them). Entries leave the snapshot
 * only when pushed out by the size bounds, not when the cache evicts them: an old answer
 * flagged stale is what the snapshot is for.
 */
import { dirname, join } from "node:path";
import { log } from "../log.ts";
import type { Slot } from "./cache.ts";

/** Where a snapshot's entries come from: the actor's cache. */
export interface SnapshotSource {
  /** Changes whenever the cache's content does (compared, not interpreted). */
  readonly changes: number;
  /** The cached slots by cache key, known absences included. */
  entries(): Iterable<[string, Slot]>;
}

export interface SnapshotOptions {
  /** The directory of the file (the service's `DATA_DIR`). */
  dir: string;
  /** Names the store the entries came from (see `redisNamespace`): one file per store. */
  namespace: string;
  /** Most entries kept (default 100,000); the least recently cached go first. */
  maxEntries?: number;
  /** Most bytes written (default 32 MiB); the least recently cached entries are left out. */
  maxBytes?: number;
}

/** The file's format version; a file of another version is ignored. */
const FORMAT = 1;

/** One entry on disk: key, body (null: known absent), value, etag, version, secret. */
type Row = [string, string | null, string, string, number, boolean];

function isRow(r: unknown): r is Row {
  return Array.isArray(r) && r.length === 6 && typeof r[0] === "string" &&
    (typeof r[1] === "string" || r[1] === null) && typeof r[2] === "string" &&
    typeof r[3] === "string" &&
    typeof r[4] === "number" && typeof r[5] === "boolean";
}

/**
 * Last-known-good configuration entries of one store, in memory and in
 * `<dir>/config-snapshot-<namespace>.json`. Written whole to a temporary file renamed over the
 * old one, so a crash mid-write leaves the previous snapshot.
 */
export class ConfigSnapshot {
  /** The snapshot file. */
  readonly path: string;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** Oldest first: the order entries are dropped in. */
  #entries = new Map<string, Slot>();
  /** The source's `changes` last merged; NaN before the first merge. */
  #merged = NaN;
  /** Entries changed since the last write. */
  #dirty = false;
  #writing: Promise<void> | null = null;

  constructor(opts: SnapshotOptions) {
    this.path = join(opts.dir, `config-snapshot-${opts.namespace}.json`);
    this.#maxEntries = Math.max(0, opts.maxEntries ?? 100_000);
    this.#maxBytes = Math.max(0, opts.maxBytes ?? 32 * 1024 * 1024);
  }

  /** How many entries are held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The slot kept for a cache key (`body` null: known absent). */
  get(key: string): Slot | undefined {
    return this.#entries.get(key);
  }

  /**
   * Reads the file, replacing what is held. A missing file is an empty snapshot; an
   * unreadable or foreign one is logged and ignored (it is rewritten on the next save).
   * @returns how many entries were loaded.
   */
  async load(): Promise<number> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        log.warn("config snapshot unreadable; starting without it", {
          path: this.path,
          error: String(err),
        });
      }
      return 0;
    }
    const entries = new Map<string, Slot>();
    try {
      const doc = JSON.parse(text) as { format?: unknown; entries?: unknown };
      if (doc.format !== FORMAT || !Array.isArray(doc.entries)) throw new Error("not a snapshot");
      // Written newest first: read back oldest first, the map's order.
      for (let i = doc.entries.length - 1; i >= 0; i--) {
        const r: unknown = doc.entries[i];
        if (!isRow(r)) throw new Error(`bad entry at ${i}`);
        const [key, body, value, etag, version, secret] = r;
        entries.set(key, { body, value, etag, version, secret });
      }
    } catch (err) {
      log.warn("config snapshot corrupt; starting without it", {
        path: this.path,
        error: String(err),
      });
      return 0;
    }
    this.#entries = entries;
    this.#bound();
    return this.#entries.size;
  }

  /**
   * Takes in the source's entries if they changed since the last merge, as the most recent.
   * Cost: one pass over the source.
   * @returns whether anything changed.
   */
  merge(source: SnapshotSource): boolean {
    if (source.changes === this.#merged) return false;
    this.#merged = source.changes;
    let changed = false;
    for (const [key, slot] of source.entries()) {
      const held = this.#entries.get(key);
      if (held === slot) continue;
      if (held && held.etag === slot.etag && held.body === slot.body) continue;
      this.#entries.delete(key);
      this.#entries.set(key, slot);
      changed = true;
    }
    if (changed) {
      this.#bound();
      this.#dirty = true;
    }
    return changed;
  }

  /**
   * Writes the file if entries changed since the last write: to a temporary file beside it,
   * then renamed over it. Concurrent calls share one write. Never throws: a failed write is
   * logged and retried by the next call.
   */
  save(): Promise<void> {
    if (this.#writing) return this.#writing;
    if (!this.#dirty) return Promise.resolve();
    this.#dirty = false;
    this.#writing = this.#write().catch((err) => {
      this.#dirty = true;
      log.warn("config snapshot write failed", { path: this.path, error: String(err) });
    }).finally(() => this.#writing = null);
    return this.#writing;
  }

  /** {@link merge} then {@link save}: what the actor's periodic snapshot message runs. */
  sync(source: SnapshotSource): Promise<void> {
    this.merge(source);
    return this.save();
  }

  async #write(): Promise<void> {
    const parts: string[] = [];
    let bytes = 64;
    // Newest first, so the byte bound leaves out the least recently cached.
    const all = [...this.#entries];
    for (let i = all.length - 1; i >= 0; i--) {
      const [key, s] = all[i];
      const row = JSON.stringify([key, s.body, s.value, s.etag, s.version, s.secret]);
      bytes += row.length + 1;
      if (bytes > this.#maxBytes) break;
      parts.push(row);
    }
    const text = `{"format":${FORMAT},"saved_at":${
      JSON.stringify(new Date().toISOString())
    },"entries":[\n${parts.join(",\n")}\n]}\n`;
    await Deno.mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(tmp, text, { mode: 0o600 });
      await Deno.rename(tmp, this.path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  #bound(): void {
    while (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }
}
