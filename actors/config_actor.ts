/**
 * The ConfigActor's behaviour, without the Worker: the configuration store behind the
 * in-memory write-through cache and the shared L2 cache, the change-log tail that feeds
 * watchers and invalidates caches, and the outbox relay. Every backend comes in as an
 * adapter ({@link ConfigBackends}), so tests drive it directly.
 */
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { ConfigCalls, ListReply } from "./config_protocol.ts";
import type { BackendStatus, MessageOf } from "./protocol.ts";
import type { Collected } from "../lib/metrics.ts";
import type { BackendProbe } from "../lib/backend.ts";
import { log } from "../lib/log.ts";
import { coalesce, settleWithin } from "../lib/async.ts";
import { EntryCache, slotOf } from "../lib/config/cache.ts";
import {
  changeEntry,
  changeView,
  type EntryId,
  entryView,
  FRESH_MS,
  FRESH_WAIT_MS,
  historyView,
  idKey,
} from "../lib/config/model.ts";
import type { ChangeFilter, ConfigStore, ListFilter } from "../lib/config/store.ts";
import type { SecretBox } from "../lib/config/secrets.ts";
import type {
  ChangeSource,
  InvalidationChannel,
  L2Cache,
  OutboxSink,
  RelayLock,
} from "../lib/config/adapters.ts";
import { StoreGuard } from "../lib/config/store_guard.ts";
import type { ConfigSnapshot } from "../lib/config/snapshot.ts";
import { OutboxRelay } from "../lib/config/outbox_relay.ts";
import { ConfigReads } from "./config_reads.ts";
import { ConfigWrites } from "./config_writes.ts";

type Ctx = ActorContext<ConfigCalls>;

/** How often the change log is polled for other replicas' writes, ms. */
export const TAIL_MS = 250;
/** How often old change-log rows are pruned, ms. */
export const PRUNE_MS = 60_000;

/**
 * The mailbox key of a message that changes an entry (`config:<id>`): writes of one entry
 * run one at a time, so an update's read of the entry's `secret` and its write do not
 * interleave with another write of it. Reads name none.
 */
export function configEntityOf(msg: MessageOf<ConfigCalls>): string | undefined {
  switch (msg.type) {
    case "create":
    case "update":
    case "delete":
    case "rollback":
      return `config:${idKey(msg.id)}`;
    default:
      return undefined;
  }
}

/** What a ConfigActor runs on; see `openConfigBackends` for the ones settings choose. */
export interface ConfigBackends {
  store: ConfigStore;
  l2: L2Cache;
  channel: InvalidationChannel;
  /** The outbox relay's sink and lock; absent: no events, the outbox is pruned as a log. */
  outbox?: { sink: OutboxSink; lock: RelayLock };
  /** Decrypts and encrypts secret values; null without `CONFIG_ENCRYPTION_KEY`. */
  secrets: SecretBox | null;
  /** Backends probed for /health, and those reported as a fixed state. */
  probes: BackendProbe[];
  fixed: BackendStatus[];
  /** Last-known-good entries (loaded), answered while the store is unreachable. */
  snapshot?: ConfigSnapshot;
}

/**
 * One ConfigActor. Entry reads go through {@link reads}, writes through {@link writes}; the
 * rest (lists, history, the tail, the relay, probes) through its own methods. Reads may run
 * concurrently; writes of one entry must not (the worker's mailbox serializes them by
 * {@link configEntityOf}).
 */
export class ConfigActor {
  readonly #ctx: Ctx;
  readonly #store: ConfigStore;
  readonly #l2: L2Cache;
  readonly #channel: InvalidationChannel;
  readonly #monitor: BackendMonitor;
  readonly #relay: OutboxRelay | null;
  readonly #guard: StoreGuard;
  readonly #cache: EntryCache;
  readonly #snapshot: ConfigSnapshot | null;
  /** GET, reveal and bulk reads: cache, then L2, then the store. */
  readonly reads: ConfigReads;
  /** Create, update, delete and rollback. */
  readonly writes: ConfigWrites;
  /** The change log as the L2 repair reads it. */
  readonly #changes: ChangeSource;
  #openDelay = 500;
  /** Highest change sequence emitted to watchers: where the tail reads on from. */
  #tailSeq = 0;
  /** Highest change sequence this actor committed (may be ahead of the tail). */
  #writtenSeq = 0;

  /**
   * Applies committed changes (ours and other replicas') to the caches and tells watchers.
   * Never runs twice at once; a call during a run gets the next run. Never throws.
   */
  readonly #tail = coalesce(() => this.#tailRound());

  constructor(ctx: Ctx, b: ConfigBackends) {
    this.#ctx = ctx;
    this.#store = b.store;
    this.#l2 = b.l2;
    this.#channel = b.channel;
    this.#monitor = new BackendMonitor(b.probes, b.fixed);
    this.#cache = new EntryCache(ctx.settings.CONFIG_CACHE_MAX_ENTRIES);
    this.#snapshot = b.snapshot ?? null;
    const timeoutMs = Math.max(100, Math.min(4_000, ctx.settings.ACTOR_CALL_TIMEOUT_MS - 500));
    this.#guard = new StoreGuard(
      timeoutMs,
      (failing) => ctx.emit({ type: "config_store", failing }),
    );
    this.#relay = b.outbox
      ? new OutboxRelay({ store: b.store, ...b.outbox, signal: ctx.signal })
      : null;
    const shared = {
      store: b.store,
      cache: this.#cache,
      l2: b.l2,
      guard: this.#guard,
      secrets: b.secrets,
    };
    this.reads = new ConfigReads({
      ...shared,
      snapshot: this.#snapshot,
      stale: () => this.stale,
    });
    this.writes = new ConfigWrites({
      ...shared,
      channel: b.channel,
      committed: (seq) => {
        if (seq > this.#writtenSeq) this.#writtenSeq = seq;
        ctx.after(0, { type: "tail" });
        if (this.#relay) ctx.after(0, { type: "relay" });
      },
    });
    this.#changes = (after, limit) => this.#store.changesSince(after, {}, limit);
  }

  /** Whether the store has been opened (migrated) since start. */
  get storeReady(): boolean {
    return this.#guard.ready;
  }

  /** The change index: every change up to it is committed. Derived, never stored. */
  get index(): number {
    return Math.max(this.#tailSeq, this.#writtenSeq);
  }

  /** Reports backends, schedules probing and pruning, listens for invalidations, opens. */
  async start(): Promise<void> {
    this.#monitor.start(this.#ctx);
    this.#ctx.after(PRUNE_MS, { type: "prune" });
    this.#channel.listen({
      message: () => this.#ctx.after(0, { type: "tail" }),
      // Messages missed while disconnected are covered by the periodic tail, which keeps the
      // cache current whether Redis is up or not: tail now. (Dropping the cache here made a
      // Redis restart during a store outage answer older versions from the snapshot than this
      // replica had answered before; found by the chaos run.)
      reconnected: () => this.#ctx.after(0, { type: "tail" }),
    });
    await this.open();
  }

  /** Runs migrations and reads the change-log head; retries with backoff while unreachable. */
  async open(): Promise<void> {
    try {
      await this.#store.migrate();
      const began = Date.now();
      this.#tailSeq = await this.#store.maxSeq();
      // Caught up as of that read: nothing before it is missing from an empty cache.
      this.#tailedAt = began;
      this.#guard.opened();
      void this.#l2.repair(this.#changes);
      this.#ctx.after(TAIL_MS, { type: "tail_tick" });
      if (this.#relay) this.#ctx.after(0, { type: "relay_tick" });
    } catch (err) {
      log.warn("configuration store unreachable; retrying", {
        error: err instanceof Error ? err.message : String(err),
        retry_in_ms: this.#openDelay,
      });
      this.#ctx.after(this.#openDelay, { type: "open" });
      this.#openDelay = Math.min(this.#openDelay * 2, 5_000);
    }
  }

  status(): Promise<BackendStatus[]> {
    return this.#monitor.check(this.#ctx);
  }

  /**
   * The periodic probe; also retries a pending L2 repair and brings the snapshot up to date
   * (off the request path, at most once a probe interval, only when the cache changed).
   */
  probe(): Promise<BackendStatus[]> {
    if (this.#l2.dirty && this.#guard.ready) void this.#l2.repair(this.#changes);
    void this.#snapshot?.sync(this.#cache);
    return this.#monitor.tick(this.#ctx);
  }

  /**
   * A list as the JSON text of its entries (masked), and the change index it reflects: one
   * string crosses to the HTTP thread as a copy, where an array of objects is cloned field by
   * field and then serialized there again.
   */
  async list(filter: ListFilter): Promise<ListReply> {
    const rows = await this.#guard.run(() => this.#store.list(filter));
    return { body: JSON.stringify(rows.map((e) => entryView(e))), index: this.index };
  }

  async history(id: EntryId, limit: number, offset: number) {
    return (await this.#guard.run(() => this.#store.history(id, limit, offset))).map(historyView);
  }

  /** Changes after `after`, oldest first, for watchers' replay. */
  async changes(after: number, filter: ChangeFilter, limit: number) {
    return (await this.#guard.run(() => this.#store.changesSince(after, filter, limit)))
      .map(changeView);
  }

  async outbox(): Promise<{ backlog: number; relaying: boolean }> {
    return {
      backlog: await this.#guard.run(() => this.#store.backlog()),
      relaying: this.#relay?.relaying ?? false,
    };
  }

  /** Tails the change log now (a write, another replica's notification). */
  tail(): Promise<void> | undefined {
    return this.#guard.ready ? this.#tail() : undefined;
  }

  /** The periodic tail: tails, then schedules the next one. */
  tailTick(): Promise<void> {
    return this.#tail().finally(() => this.#ctx.after(TAIL_MS, { type: "tail_tick" }));
  }

  /**
   * Undefined while cached answers are current (see {@link FRESH_MS}); else a tail round to
   * wait for before answering from the cache.
   */
  fresh(): Promise<void> | undefined {
    if (Date.now() - this.#tailedAt < FRESH_MS || !this.#guard.ready) return undefined;
    // Bounded: a tail held up (by a lock a frozen replica holds) must not hold reads up with
    // it; the answer is then marked stale (see `stale`).
    return settleWithin(this.#tail(), FRESH_WAIT_MS);
  }

  /** Whether answers from the caches are to be marked stale (the store is failing). */
  get stale(): boolean {
    return this.#guard.down || Date.now() - this.#tailedAt >= FRESH_MS;
  }

  /** When the last successful tail round began (Date.now()). */
  #tailedAt = 0;

  async #tailRound(): Promise<void> {
    const began = Date.now();
    try {
      while (true) {
        await this.#store.sequence?.();
        const changes = await this.#store.changesSince(this.#tailSeq, {}, 1000);
        this.#guard.report(false);
        if (changes.length === 0) break;
        const puts: Promise<boolean>[] = [];
        const prev = this.#tailSeq;
        for (const c of changes) {
          const key = idKey(c);
          // The writer's own L2 update may not have landed yet: push the committed state so
          // a read here cannot fetch the older one from L2 and keep it (versions only rise).
          puts.push(this.#l2.putIfNewer(c, c.version, changeEntry(c)));
          const cur = this.#cache.peek(key);
          // Our own writes are cached already at this version. Others' are cached as the tail
          // read them, whether the key was cached or not: dropped, a read would answer what L2
          // or (store down) the snapshot hold, which may be older than what this replica has
          // seen or answered (found by the chaos run). Reads under way must not cache what
          // they read before this change (`written` bumps the epoch).
          if (!cur || cur.version < c.version) {
            this.#cache.written(key, slotOf(changeEntry(c), c.version));
          }
        }
        this.#tailSeq = changes[changes.length - 1].seq;
        this.#l2.advance(prev, this.#tailSeq, puts);
        this.#ctx.emit({ type: "config_changes", changes: changes.map(changeView) });
        if (changes.length < 1000) break;
      }
      this.#tailedAt = began;
      this.#ctx.emit({ type: "config_tailed", at: began });
    } catch (err) {
      this.#guard.report(true);
      log.debug("config tail failed", { error: String(err) });
    }
  }

  /** Relays the outbox now (after a write). */
  relay(): Promise<unknown> | undefined {
    return this.#relay && this.#guard.ready ? this.#relay.run() : undefined;
  }

  /** The periodic relay round: relays, then schedules the next round (sooner after a failure). */
  async relayTick(): Promise<void> {
    if (!this.#relay) return;
    const next = await this.#relay.run();
    this.#ctx.after(next, { type: "relay_tick" });
  }

  /** Deletes change-log rows past retention (unpublished ones too when there is no outbox). */
  async prune(): Promise<void> {
    try {
      const before = new Date(Date.now() - this.#ctx.settings.CONFIG_CHANGELOG_RETENTION * 1000);
      await this.#store.prune(before.toISOString(), this.#relay === null);
    } catch (err) {
      log.debug("config change-log prune failed", { error: String(err) });
    } finally {
      this.#ctx.after(PRUNE_MS, { type: "prune" });
    }
  }

  async metrics(): Promise<Collected[]> {
    return [
      {
        name: "config_cache_lookups_total",
        help: "ConfigActor cache lookups by result",
        type: "counter",
        samples: [
          { labels: { result: "hit" }, value: this.#cache.hits },
          { labels: { result: "miss" }, value: this.#cache.misses },
        ],
      },
      {
        name: "config_outbox_backlog",
        help: "Configuration change events not yet published to Kafka",
        type: "gauge",
        samples: this.#guard.ready
          ? [{ value: await this.#guard.run(() => this.#store.backlog()).catch(() => NaN) }]
          : [],
      },
    ];
  }

  /** Closes every backend; errors are ignored (the process is going away). */
  async stop(): Promise<void> {
    const closers = [
      () => this.#snapshot?.sync(this.#cache),
      () => this.#relay?.close(),
      () => this.#store.close(),
      () => this.#l2.close(),
      () => this.#channel.close(),
    ];
    // Each closer on its own: one that throws synchronously must not skip the others.
    await Promise.allSettled(closers.map(async (close) => await close()));
  }
}
