/** The flag cache in Redis: one key per environment under a namespace of the flag source. */
import type { Redis } from "ioredis";
import type { Settings } from "../settings.ts";
import type { FlagCache } from "../flags/cache.ts";
import type { Snapshot } from "../flags/store.ts";
import { createRedis, redisNamespace, setIfNewer } from "./redis.ts";
import { flagsFilePath } from "./flags_file.ts";

export interface RedisFlagCacheOptions {
  /** Keys are `<prefix>:<environment>` (and `…:version` beside each). */
  prefix: string;
  /** How long an entry lives, seconds (> 0). */
  ttlSeconds: number;
}

/**
 * {@link FlagCache} over a Redis client, which it owns (closed with the cache). The value is
 * `{hash, etag, synced_at, doc}` as JSON text, the format every replica reads.
 */
export class RedisFlagCache implements FlagCache {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttl: number;

  constructor(redis: Redis, opts: RedisFlagCacheOptions) {
    this.#redis = redis;
    this.#prefix = opts.prefix;
    this.#ttl = opts.ttlSeconds;
  }

  async put(snap: Snapshot): Promise<boolean> {
    await this.#connected();
    const value = JSON.stringify({
      hash: snap.hash,
      etag: snap.etag,
      synced_at: snap.synced_at,
      doc: snap.doc,
    });
    return await setIfNewer(
      this.#redis,
      this.#key(snap.environment),
      value,
      snap.synced_at,
      this.#ttl,
    );
  }

  async get(environment: string): Promise<Snapshot | null> {
    await this.#connected();
    const raw = await this.#redis.get(this.#key(environment));
    if (!raw) return null;
    const c = JSON.parse(raw) as Omit<Snapshot, "environment">;
    return { environment, hash: c.hash, etag: c.etag, doc: c.doc, synced_at: c.synced_at };
  }

  close(): Promise<void> {
    this.#redis.disconnect();
    return Promise.resolve();
  }

  #key(environment: string): string {
    return `${this.#prefix}:${environment}`;
  }

  /** The client connects lazily; with no offline queue a command before that fails. */
  async #connected(): Promise<void> {
    if (this.#redis.status === "wait") await this.#redis.connect();
  }
}

/**
 * The FlagActor's cache from settings (`REDIS_*`, `FEATURE_FLAG_CACHE_TTL` > 0), namespaced
 * by the flag source (`UNLEASH_URL`, else the flags file) so deployments sharing one Redis
 * never read each other's definitions.
 */
export function createRedisFlagCache(s: Settings): RedisFlagCache {
  return new RedisFlagCache(createRedis(s, "config-service-flags"), {
    prefix: `config-service:flags:${redisNamespace(s.UNLEASH_URL ?? flagsFilePath(s))}`,
    ttlSeconds: s.FEATURE_FLAG_CACHE_TTL,
  });
}
