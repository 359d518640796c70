/**
 * Watches `ZOOKEEPER_BASE_PATH` for instances that others registered (Curator x-discovery,
 * Spring Cloud Zookeeper) and reports them as they come, change and go: ZooKeeper watches
 * on the base (services), on each service parent (instances) and on each foreign instance
 * (its data), re-armed as they fire, never polled. Our own znodes (this replica's, and
 * another config-service's, recognised by their format) are not reported.
 */
import type { ZkSession, ZkWatchEvent } from "../backends/zookeeper.ts";
import { log } from "../log.ts";
import { classifyZnode } from "./foreign.ts";
import type { Instance } from "./model.ts";

/** Where foreign instances are reported. */
export interface ForeignSink {
  /** A foreign instance appeared or its znode changed. */
  upsert(i: Instance): void;
  /** A foreign instance's znode went. */
  remove(service: string, id: string): void;
  /**
   * The znode of one of ours (`ours(service, id)`: registered through this replica or another
   * config-service replica) went while this session watched: its owner's session ended, or
   * another replica removed it.
   */
  vanished?(service: string, id: string): void;
}

export interface ForeignWatchOptions {
  /** The base path ("/services"), or "" for the root. */
  base: string;
  /** Whether `service/id` is this replica's own registration (never read). */
  ours(service: string, id: string): boolean;
  sink: ForeignSink;
  /** Appended to a foreign instance's URL for its health check (`/actuator/health`). */
  healthPath: string;
}

/** After a failed scan (connection trouble), when to try again while still attached. */
const RETRY_MS = 1_000;

/** One key's scan at a time; a request meanwhile runs it once more afterwards. */
class Coalescer {
  readonly #running = new Map<string, { again: boolean }>();

  run(key: string, fn: () => Promise<void>): Promise<void> {
    const r = this.#running.get(key);
    if (r) {
      r.again = true;
      return Promise.resolve();
    }
    const state = { again: false };
    this.#running.set(key, state);
    return (async () => {
      try {
        do {
          state.again = false;
          await fn();
        } while (state.again);
      } finally {
        this.#running.delete(key);
      }
    })();
  }
}

/** The foreign instances under a base path, kept current across sessions. */
export class ForeignWatch {
  readonly #o: ForeignWatchOptions;
  #session: ZkSession | null = null;
  /** Watches set in the current session, by kind and path ("c:/services/x", "d:…"). */
  #armed = new Set<string>();
  /**
   * service → id → a digest of the znode data last read (every znode read, foreign or not),
   * to tell a change from a repeat without keeping the data. Cleared on a new session: its
   * watches are gone, so every znode is read (and watched) again.
   */
  #seen = new Map<string, Map<string, string>>();
  /** service → ids reported to the sink as foreign. */
  readonly #foreign = new Map<string, Set<string>>();
  /** "service/id" of znodes in our own format written by another replica: not followed. */
  readonly #oursFormat = new Set<string>();
  /** service → its children at the last scan in this session (ours included). */
  #listed = new Map<string, Set<string>>();
  readonly #scans = new Coalescer();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(o: ForeignWatchOptions) {
    this.#o = o;
  }

  /** How many foreign instances are reported now. */
  get size(): number {
    let n = 0;
    for (const ids of this.#foreign.values()) n += ids.size;
    return n;
  }

  /**
   * Reads everything again through `session` and reports the differences: on a new session
   * the watches are set anew; on a reconnect of the same one they still stand (the client
   * sets them again on the server), and events missed meanwhile are caught by this read.
   */
  sync(session: ZkSession): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (session !== this.#session) {
      this.#session = session;
      this.#armed = new Set();
      // Every data watch went with the old session: read every znode again, with a watch. What
      // was reported stays until this read says otherwise (gone: removed; changed: updated).
      this.#seen = new Map();
      this.#listed = new Map();
      this.#oursFormat.clear();
    }
    return this.#scanBase();
  }

  /** Reads a service again (after a registration of ours in it was refused or removed). */
  rescan(service: string): void {
    if (this.#session) void this.#scanService(service);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#session = null;
  }

  #path(service?: string, id?: string): string {
    const b = this.#o.base;
    if (service === undefined) return b === "" ? "/" : b;
    return id === undefined ? `${b}/${service}` : `${b}/${service}/${id}`;
  }

  #live(s: ZkSession): boolean {
    return !this.#stopped && this.#session === s;
  }

  /** Children of `path`, setting a watch unless one stands; `onFire` runs when it fires. */
  async #children(s: ZkSession, path: string, onFire: (e: ZkWatchEvent) => void) {
    return await this.#readOnce(
      `c:${path}`,
      () => s.getChildren(path),
      (w) => s.watchChildren(path, w),
      s,
      onFire,
    ) ?? [];
  }

  /** Data of `path` (null: no node), setting a watch unless one stands. */
  #data(s: ZkSession, path: string, onFire: (e: ZkWatchEvent) => void) {
    return this.#readOnce(
      `d:${path}`,
      () => s.getData(path),
      (w) => s.watchData(path, w),
      s,
      onFire,
    );
  }

  /**
   * One read: plain when a watch stands for `key` in this session, else watched (the watch
   * stands from now until it fires; a node that does not exist gets none, and is watched
   * when it is read next).
   */
  async #readOnce<T>(
    key: string,
    plain: () => Promise<T | null>,
    watched: (w: (e: ZkWatchEvent) => void) => Promise<T | null>,
    s: ZkSession,
    onFire: (e: ZkWatchEvent) => void,
  ): Promise<T | null> {
    if (this.#armed.has(key)) return await plain();
    this.#armed.add(key);
    const got = await watched((e) => {
      this.#armed.delete(key);
      if (this.#live(s)) onFire(e);
    }).catch((err) => {
      this.#armed.delete(key);
      throw err;
    });
    if (got === null) this.#armed.delete(key);
    return got;
  }

  #failed(what: string, err: unknown): void {
    log.debug("zookeeper watch read failed; reading again", { what, error: String(err) });
    if (this.#stopped || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#session?.connected) void this.#scanBase();
    }, RETRY_MS);
  }

  #scanBase(): Promise<void> {
    return this.#scans.run("base", async () => {
      const s = this.#session;
      if (!s || !this.#live(s)) return;
      try {
        const base = this.#path();
        let services = await this.#children(s, base, () => void this.#scanBase());
        if (services.length === 0 && !(await s.exists(base))) {
          await s.mkdirp(base);
          services = await this.#children(s, base, () => void this.#scanBase());
        }
        // At the root, ZooKeeper's own /zookeeper node is no service.
        const names = new Set(services.filter((n) => this.#o.base !== "" || n !== "zookeeper"));
        for (const svc of new Set([...this.#seen.keys(), ...this.#foreign.keys()])) {
          if (!names.has(svc)) this.#dropService(svc);
        }
        await Promise.all([...names].map((svc) => this.#scanService(svc)));
      } catch (err) {
        this.#failed("services", err);
      }
    });
  }

  #scanService(svc: string): Promise<void> {
    return this.#scans.run(`s:${svc}`, async () => {
      const s = this.#session;
      if (!s || !this.#live(s)) return;
      try {
        const ids = await this.#children(s, this.#path(svc), () => void this.#scanService(svc));
        const now = new Set(ids);
        this.#vanished(svc, now);
        const seen = this.#seen.get(svc) ?? new Map<string, string>();
        this.#seen.set(svc, seen);
        for (const id of [...seen.keys()]) {
          if (!now.has(id)) this.#forget(svc, id);
        }
        for (const id of [...this.#foreign.get(svc) ?? []]) {
          if (!now.has(id) || this.#o.ours(svc, id)) this.#forget(svc, id);
        }
        const unread = ids.filter((id) => !seen.has(id) && !this.#o.ours(svc, id));
        await Promise.all(unread.map((id) => this.#read(svc, id)));
        if (seen.size === 0 && ids.length === 0) this.#seen.delete(svc);
      } catch (err) {
        this.#failed(`service ${svc}`, err);
      }
    });
  }

  #read(svc: string, id: string): Promise<void> {
    return this.#scans.run(`d:${svc}/${id}`, async () => {
      const s = this.#session;
      if (!s || !this.#live(s) || this.#o.ours(svc, id)) return;
      try {
        // Another replica rewrites its znodes at every health check: their data is not
        // followed (the service's children watch still sees them go).
        const text = await this.#data(s, this.#path(svc, id), () => {
          if (!this.#oursFormat.has(`${svc}/${id}`)) void this.#read(svc, id);
        });
        if (text === null) {
          this.#forget(svc, id);
          return;
        }
        const seen = this.#seen.get(svc) ?? new Map<string, string>();
        this.#seen.set(svc, seen);
        const digest = digestOf(text);
        if (seen.get(id) === digest) return;
        seen.set(id, digest);
        const k = classifyZnode(svc, id, text, this.#o.healthPath);
        if (k.kind === "foreign") {
          let ids = this.#foreign.get(svc);
          if (!ids) this.#foreign.set(svc, ids = new Set());
          ids.add(id);
          this.#o.sink.upsert(k.instance);
          return;
        }
        if (k.kind === "ours") this.#oursFormat.add(`${svc}/${id}`);
        if (k.kind === "invalid") {
          log.warn("znode under the base path is no service instance; ignored", {
            path: this.#path(svc, id),
            reason: k.reason,
          });
        }
        this.#unreport(svc, id);
      } catch (err) {
        this.#failed(`instance ${svc}/${id}`, err);
      }
    });
  }

  #unreport(svc: string, id: string): void {
    const ids = this.#foreign.get(svc);
    if (!ids?.delete(id)) return;
    if (ids.size === 0) this.#foreign.delete(svc);
    this.#o.sink.remove(svc, id);
  }

  #forget(svc: string, id: string): void {
    this.#seen.get(svc)?.delete(id);
    this.#oursFormat.delete(`${svc}/${id}`);
    this.#unreport(svc, id);
  }

  /** Reports ours that were listed in `svc` at the last scan and are not in `now`. */
  #vanished(svc: string, now: Set<string>): void {
    const before = this.#listed.get(svc);
    if (now.size > 0) this.#listed.set(svc, now);
    else this.#listed.delete(svc);
    if (!before || !this.#o.sink.vanished) return;
    for (const id of before) {
      if (!now.has(id) && this.#o.ours(svc, id)) this.#o.sink.vanished(svc, id);
    }
  }

  #dropService(svc: string): void {
    this.#vanished(svc, new Set());
    for (const id of [...this.#seen.get(svc)?.keys() ?? []]) this.#forget(svc, id);
    for (const id of [...this.#foreign.get(svc) ?? []]) this.#unreport(svc, id);
    this.#seen.delete(svc);
  }
}

/** Length and 32-bit FNV-1a of `text`: enough to tell a changed znode from a repeat. */
function digestOf(text: string): string {
  let h = 0x811c9dc5;
  for (let k = 0; k < text.length; k++) {
    h ^= text.charCodeAt(k);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${text.length}:${h.toString(16)}`;
}
