/**
 * The flag cache: each environment's last definitions shared between replicas, so an
 * instance that cannot reach the source at start still answers (reason CACHED). Redis when
 * configured (lib/backends/flag_cache_redis.ts), else none.
 */
import type { Snapshot } from "./store.ts";

export interface FlagCache {
  /**
   * Stores `snap` under its environment unless the cache holds a newer one (by `synced_at`,
   * ISO timestamps compared as strings): replicas sync on their own clocks, so of racing
   * writers the newest fetch wins, not the last write.
   * @returns true when written.
   * @throws {Error} when the cache cannot be reached.
   */
  put(snap: Snapshot): Promise<boolean>;
  /**
   * The newest snapshot written for `environment`, or null.
   * @throws {Error} when the cache cannot be reached.
   */
  get(environment: string): Promise<Snapshot | null>;
  /** Closes the connection; idempotent. */
  close(): Promise<void>;
}

/** No shared cache (one process, or `FEATURE_FLAG_CACHE_TTL=0`): nothing is kept. */
export class NoFlagCache implements FlagCache {
  put(_snap: Snapshot): Promise<boolean> {
    return Promise.resolve(false);
  }
  get(_environment: string): Promise<Snapshot | null> {
    return Promise.resolve(null);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
