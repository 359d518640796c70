/** Redis through `npm:ioredis`. */
import { Redis } from "ioredis";
import type { Settings } from "../settings.ts";
import type { BackendProbe } from "../backend.ts";
import { log } from "../log.ts";

export type { Redis };

/**
 * A client that fails fast while Redis is away (no offline queue, one retry per command)
 * and keeps reconnecting in the background: Redis is a cache here, never a dependency
 * a request waits on.
 */
export function createRedis(s: Settings, name = "config-service"): Redis {
  const r = new Redis({
    host: s.REDIS_HOST,
    port: s.REDIS_PORT,
    password: s.REDIS_PASSWORD || undefined,
    db: s.REDIS_DB,
    connectionName: name,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 2_000),
  });
  let lastError = "";
  r.on("error", (err: Error) => {
    // ioredis emits an error per failed reconnect attempt; log each distinct one once.
    if (err.message !== lastError) {
      lastError = err.message;
      log.warn("redis error", { error: err.message });
    }
  });
  r.on("ready", () => {
    lastError = "";
  });
  return r;
}

const SET_IF_NEWER = `
local cur = redis.call('GET', KEYS[2])
if cur and cur > ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1`;

/**
 * Sets `key` to `value` unless Redis already holds a newer one: `version` is compared as a
 * string (ISO timestamps order so) with the one stored beside the key at `key:version`, in one
 * script, so of several writers racing the newest wins, not the last. True when written.
 */
export async function setIfNewer(
  r: Redis,
  key: string,
  value: string,
  version: string,
  ttlSeconds: number,
): Promise<boolean> {
  const n = await r.eval(SET_IF_NEWER, 2, key, `${key}:version`, value, version, ttlSeconds);
  return n === 1;
}

/**
 * Resolves once `r` is ready; rejects with the error that ends its connection attempt, or
 * with `signal`'s reason.
 */
function untilReady(r: Redis, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: unknown) => {
      r.off("ready", onReady);
      r.off("error", onError);
      r.off("end", onEnd);
      signal.removeEventListener("abort", onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onReady = () => settle();
    const onError = (err: Error) => settle(err);
    const onEnd = () => settle(new Error("Redis connection closed"));
    const onAbort = () => settle(signal.reason);
    r.once("ready", onReady);
    r.once("error", onError);
    r.once("end", onEnd);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Readiness of Redis: PING. A connection being opened (the first one after start, or a
 * reconnect under way) is waited for, within the probe's timeout: with no offline queue a
 * PING sent before it is ready fails at once ("Stream isn't writeable…"), which says nothing
 * about Redis. Between reconnect attempts the probe fails at once.
 */
export function redisProbe(r: Redis): BackendProbe {
  return {
    name: "cache",
    kind: "redis",
    async check(signal) {
      if (r.status === "wait") r.connect().catch(() => {});
      if (r.status === "connecting" || r.status === "connect") await untilReady(r, signal);
      if (r.status !== "ready") throw new Error(`Redis is not connected (${r.status})`);
      await r.ping();
    },
  };
}

/** The namespace of Redis keys for a store or source: see {@link storeNamespace}. */
export { storeNamespace as redisNamespace } from "./namespace.ts";
