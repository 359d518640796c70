/**
 * The ConfigActor's backends besides its store, each behind a small interface with an
 * embedded (or null) implementation here and a real one beside the store adapters:
 *
 * - {@link L2Cache}: entries shared by every replica (Redis: `redis_adapters.ts`).
 * - {@link InvalidationChannel}: "a change committed" between replicas (Redis).
 * - {@link RelayLock}: which replica relays the outbox (PostgreSQL: `postgres_relay_lock.ts`).
 * - {@link OutboxSink}: where outbox events go (Kafka: `kafka_outbox.ts`).
 *
 * None of them is a dependency a request waits on: every method that touches a server
 * reports failure by its result, except where noted.
 */
import { changeEntry, type EntryId, idKey, type StoredChange, type StoredEntry } from "./model.ts";

/** Reads the change log: changes with `seq > after`, oldest first, at most `limit`. */
export type ChangeSource = (after: number, limit: number) => Promise<StoredChange[]>;

/**
 * The shared (L2) cache of entries, versioned per entry: a value only ever moves forward. A
 * watermark records the change sequence up to which every change is in the cache; the cache
 * is read only while it is trusted (repaired since start and since the last lost connection).
 */
export interface L2Cache {
  /** True when reads bypass it until a {@link repair} ran (at start, after a lost write). */
  readonly dirty: boolean;
  /**
   * The cached entry of `id`: null when it is cached as absent, undefined when not cached,
   * unreachable or not trusted. `untrusted`: read even while {@link dirty} (possibly older
   * than the store: only for stale answers while the store is unreachable). Never throws.
   */
  get(id: EntryId, opts?: { untrusted?: boolean }): Promise<StoredEntry | null | undefined>;
  /**
   * Stores `entry` (null: absent) as `id`'s at `version` unless a newer version is there.
   * Never throws. @returns whether the cache was reached.
   */
  putIfNewer(id: EntryId, version: number, entry: StoredEntry | null): Promise<boolean>;
  /**
   * Records that the changes in `(from, to]` were put: the watermark moves to `to` when every
   * put in `puts` reached the cache, else the cache turns dirty. Advances apply in call order.
   */
  advance(from: number, to: number, puts: Promise<boolean>[]): void;
  /**
   * When dirty: replays `changes` past the watermark into the cache and trusts it again.
   * Never throws; a failed repair leaves it dirty, to retry later.
   */
  repair(changes: ChangeSource): Promise<void>;
  close(): Promise<void>;
}

/** Change notifications between replicas, so each tails its change log at once. */
export interface InvalidationChannel {
  /** Tells every replica (this one included) that `seq` committed. Never throws. */
  publish(seq: number): void;
  /**
   * Starts listening. `message`: a notification arrived. `reconnected`: listening (again);
   * notifications sent meanwhile were lost, so whatever they would have invalidated is old.
   */
  listen(handlers: { message(): void; reconnected(): void }): void;
  close(): Promise<void>;
}

/** The lock that makes one replica the outbox relay. */
export interface RelayLock {
  /**
   * Confirms the lock is still held, else tries to take it.
   * @returns whether this replica holds it now.
   * @throws when its server is unreachable.
   */
  acquire(): Promise<boolean>;
  /** Whether the last {@link acquire} took or confirmed it (no round trip). */
  held(): boolean;
  /** Lets it go; another replica may take it. */
  release(): void;
}

/** One outbox event as sent: key `environment/service/key`, JSON value, its event id. */
export interface OutboxMessage {
  key: string;
  value: string;
  eventId: string;
}

/** Where the outbox relay sends events. */
export interface OutboxSink {
  /**
   * Sends `messages` in order; resolves once every in-sync replica has them. Connects on
   * first use. @throws when they were not all delivered (the relay sends them again).
   */
  send(messages: OutboxMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** No shared cache (no `REDIS_HOST`): every lookup misses, nothing is kept. */
export class NullL2Cache implements L2Cache {
  readonly dirty = false;
  get(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  putIfNewer(): Promise<boolean> {
    return Promise.resolve(false);
  }
  advance(): void {}
  repair(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * An in-process shared cache with the semantics of the Redis one (forward-only versions, a
 * watermark, dirty until repaired): for tests, and to share between actors of one process.
 */
export class MemoryL2Cache implements L2Cache {
  #entries = new Map<string, { version: number; entry: StoredEntry | null }>();
  #watermark = 0;
  #dirty = true;
  #chain: Promise<unknown> = Promise.resolve();
  /** False: behaves like an unreachable server (puts fail, reads miss). */
  reachable = true;

  get dirty(): boolean {
    return this.#dirty;
  }
  /** The sequence up to which every change is in the cache. */
  get watermark(): number {
    return this.#watermark;
  }

  get(id: EntryId, opts: { untrusted?: boolean } = {}): Promise<StoredEntry | null | undefined> {
    if (!this.reachable || (this.#dirty && !opts.untrusted)) return Promise.resolve(undefined);
    return Promise.resolve(this.#entries.get(idKey(id))?.entry);
  }

  putIfNewer(id: EntryId, version: number, entry: StoredEntry | null): Promise<boolean> {
    if (!this.reachable) return Promise.resolve(false);
    const k = idKey(id);
    const cur = this.#entries.get(k);
    if (!cur || cur.version < version) this.#entries.set(k, { version, entry });
    return Promise.resolve(true);
  }

  advance(from: number, to: number, puts: Promise<boolean>[]): void {
    this.#chain = this.#chain.then(async () => {
      if (!(await Promise.all(puts)).every(Boolean)) this.#dirty = true;
      else if (!this.#dirty && this.reachable && this.#watermark >= from && this.#watermark < to) {
        this.#watermark = to;
      }
    });
  }

  async repair(changes: ChangeSource): Promise<void> {
    if (!this.#dirty || !this.reachable) return;
    try {
      while (true) {
        const batch = await changes(this.#watermark, 1000);
        if (batch.length === 0) break;
        for (const c of batch) await this.putIfNewer(c, c.version, changeEntry(c));
        this.#watermark = batch[batch.length - 1].seq;
        if (batch.length < 1000) break;
      }
      this.#dirty = false;
    } catch { /* stays dirty: the next repair retries */ }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** No channel (no `REDIS_HOST`): one replica, whose writes tail themselves. */
export class NullInvalidationChannel implements InvalidationChannel {
  publish(): void {}
  listen(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** One replica, or a store without locks (SQLite): this replica always relays. */
export class LocalRelayLock implements RelayLock {
  #held = false;
  acquire(): Promise<boolean> {
    this.#held = true;
    return Promise.resolve(true);
  }
  held(): boolean {
    return this.#held;
  }
  release(): void {
    this.#held = false;
  }
}

/** Keeps what it is sent, in order (tests); `failing` makes sends throw. */
export class MemoryOutboxSink implements OutboxSink {
  readonly sent: OutboxMessage[] = [];
  failing = false;
  send(messages: OutboxMessage[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error("outbox sink unavailable"));
    this.sent.push(...messages);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
