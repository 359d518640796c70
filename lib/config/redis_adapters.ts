/**
 * The ConfigActor's Redis adapters: the shared L2 cache of entries and the invalidation
 * channel between replicas. Loaded only when `REDIS_HOST` is set.
 */
import { createRedis, type Redis, redisNamespace, redisProbe } from "../backends/redis.ts";
import type { BackendProbe } from "../backend.ts";
import type { Settings } from "../settings.ts";
import { log } from "../log.ts";
import { changeEntry, type EntryId, type StoredChange, type StoredEntry } from "./model.ts";
import type { ChangeSource, InvalidationChannel, L2Cache } from "./adapters.ts";

/** Seconds an L2 entry lives without being written again. */
const REDIS_TTL_S = 300;
/** The channel every replica of every deployment on this Redis shares. */
export const INVALIDATE_CHANNEL = "config-service:config-changes";

// Compare-and-set by version: the shared cache only ever moves forward.
const SET_IF_NEWER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, '^(%d+)|'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1`;

const ADVANCE_L2_SEQ = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= tonumber(ARGV[1]) and cur < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/**
 * The L2 cache in Redis: `<prefix>:cfg:[env,service,key]` → `version|entry JSON`.
 *
 * The watermark (`<prefix>:cfg:l2seq`): every change with a sequence up to it is in Redis (or
 * a newer version of its entry is). It only moves over a range some replica pushed in full,
 * so changes made while Redis was unreachable are replayed from the change log before L2 is
 * trusted again — by whichever replica next connects, also one started after all the others
 * died.
 */
export class RedisL2Cache implements L2Cache {
  readonly #redis: Redis;
  readonly #prefix: string;
  /** L2 is not read while true: at start and after losing Redis, until a repair ran. */
  #dirty = true;
  #repairing = false;
  /** Watermark advances of the tail, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  /** The change log, once a repair named it: every reconnect repairs from it. */
  #source: ChangeSource | null = null;

  /**
   * @param redis a connection from `createRedis` (connected by the caller, after this)
   * @param prefix namespace of the keys, e.g. `cs:<redisNamespace(store)>`
   */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    redis.on("close", () => {
      this.#dirty = true;
    });
    redis.on("ready", () => {
      if (this.#source) void this.repair(this.#source);
    });
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  #key(id: EntryId): string {
    return `${this.#prefix}:cfg:${JSON.stringify([id.environment, id.service, id.key])}`;
  }
  get #seqKey(): string {
    return `${this.#prefix}:cfg:l2seq`;
  }
  get #ready(): boolean {
    return this.#redis.status === "ready";
  }

  async get(
    id: EntryId,
    opts: { untrusted?: boolean } = {},
  ): Promise<StoredEntry | null | undefined> {
    if (!this.#ready || (this.#dirty && !opts.untrusted)) return undefined;
    try {
      const v = await this.#redis.get(this.#key(id));
      if (v === null) return undefined;
      return JSON.parse(v.slice(v.indexOf("|") + 1));
    } catch {
      return undefined;
    }
  }

  putIfNewer(id: EntryId, version: number, entry: StoredEntry | null): Promise<boolean> {
    if (!this.#ready) return Promise.resolve(false);
    return this.#redis.eval(
      SET_IF_NEWER,
      1,
      this.#key(id),
      version,
      JSON.stringify(entry),
      REDIS_TTL_S,
    ).then(() => true, () => false);
  }

  advance(from: number, to: number, puts: Promise<boolean>[]): void {
    this.#chain = this.#chain.then(async () => {
      const ok = (await Promise.all(puts)).every(Boolean);
      if (!ok) this.#dirty = true;
      else if (!this.#dirty) {
        await this.#redis.eval(ADVANCE_L2_SEQ, 1, this.#seqKey, from, to).catch(() => {});
      }
    });
  }

  /** Replays the changes past the watermark into L2, then trusts L2 again. */
  async repair(changes: ChangeSource): Promise<void> {
    this.#source = changes;
    if (!this.#dirty || this.#repairing || !this.#ready) return;
    this.#repairing = true;
    try {
      let from = Number(await this.#redis.get(this.#seqKey) ?? 0);
      let replayed = 0;
      while (true) {
        const batch: StoredChange[] = await changes(from, 1000);
        if (batch.length === 0) break;
        const oks = await Promise.all(
          batch.map((c) => this.putIfNewer(c, c.version, changeEntry(c))),
        );
        if (!oks.every(Boolean)) return;
        const to = batch[batch.length - 1].seq;
        await this.#redis.eval(ADVANCE_L2_SEQ, 1, this.#seqKey, from, to);
        replayed += batch.length;
        from = to;
        if (batch.length < 1000) break;
      }
      if (replayed > 0) log.info("L2 cache repaired from the change log", { replayed });
      this.#dirty = false;
    } catch (err) {
      log.warn("L2 cache repair failed; retrying", { error: (err as Error).message });
    } finally {
      this.#repairing = false;
    }
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

/**
 * Publish/subscribe on {@link INVALIDATE_CHANNEL}: a message `{seq, from}` per committed
 * write. Publishing uses a command connection; listening needs a connection of its own.
 */
export class RedisInvalidationChannel implements InvalidationChannel {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #instance: string;

  /**
   * @param publisher a command connection, owned by the caller (not closed here)
   * @param subscriber a connection of its own, connected by {@link listen}, closed here
   * @param instance this replica's id, sent as `from`
   */
  constructor(publisher: Redis, subscriber: Redis, instance: string) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#instance = instance;
  }

  publish(seq: number): void {
    if (this.#publisher.status !== "ready") return;
    this.#publisher.publish(INVALIDATE_CHANNEL, JSON.stringify({ seq, from: this.#instance }))
      .catch(() => {});
  }

  listen(handlers: { message(): void; reconnected(): void }): void {
    const sub = this.#subscriber;
    sub.on("message", () => handlers.message());
    sub.on("ready", () => {
      handlers.reconnected();
      sub.subscribe(INVALIDATE_CHANNEL).catch(() => {});
    });
    sub.connect().catch(() => {});
  }

  async close(): Promise<void> {
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
  }
}

/** What {@link openRedisAdapters} opens. */
export interface RedisAdapters {
  l2: RedisL2Cache;
  channel: RedisInvalidationChannel;
  /** Readiness of the cache connection. */
  probe: BackendProbe;
}

/**
 * The L2 cache and channel for the store named `store` (its URL, or `sqlite:<real path>`):
 * keys are namespaced by it, so deployments sharing one Redis never read each other's
 * entries. The cache connection starts connecting now; the channel's on `listen`.
 */
export function openRedisAdapters(s: Settings, store: string): RedisAdapters {
  const redis = createRedis(s);
  const l2 = new RedisL2Cache(redis, `cs:${redisNamespace(store)}`);
  redis.connect().catch(() => {});
  const channel = new RedisInvalidationChannel(
    redis,
    createRedis(s, "config-service-sub"),
    s.SERVICE_INSTANCE_ID,
  );
  return { l2, channel, probe: redisProbe(redis) };
}
