/**
 * The FlagActor's backends from settings: the source (Unleash, else the flags file), the
 * store (PostgreSQL, else SQLite), the cache (Redis, else none) and the event sink (Kafka,
 * else none). Drivers load only when configured.
 */
import type { Settings } from "../lib/settings.ts";
import { FileFlagSource, type FlagSource, UnleashFlagSource } from "../lib/flags/sources.ts";
import type { FlagStore } from "../lib/flags/store.ts";
import { type FlagCache, NoFlagCache } from "../lib/flags/cache.ts";
import { type FlagEventSink, NoFlagEventSink } from "../lib/flags/event_sink.ts";
import { flagsFilePath } from "../lib/backends/flags_file.ts";

/** What the FlagActor works over. */
export interface FlagBackends {
  source: FlagSource;
  /** Migrated and open; the actor closes it. */
  store: FlagStore;
  cache: FlagCache;
  events: FlagEventSink;
}

/**
 * Opens the backends `s` names and migrates the store.
 * @throws when the store cannot be opened or migrated (the actor does not start).
 */
export async function openFlagBackends(s: Settings): Promise<FlagBackends> {
  const source: FlagSource = s.UNLEASH_URL
    ? new UnleashFlagSource({
      url: s.UNLEASH_URL,
      adminToken: s.UNLEASH_API_TOKEN,
      clientTokens: s.UNLEASH_CLIENT_TOKENS,
      appName: s.UNLEASH_APP_NAME,
      instanceId: s.UNLEASH_INSTANCE_ID,
    }, s.UNLEASH_REFRESH_INTERVAL)
    : new FileFlagSource(flagsFilePath(s));
  let store: FlagStore;
  if (s.DATABASE_URL) {
    const { createPostgres } = await import("../lib/backends/postgres.ts");
    const { PostgresFlagStore } = await import("../lib/flags/store.ts");
    store = new PostgresFlagStore(createPostgres(s.DATABASE_URL, { max: 2 }));
  } else {
    const { openSqlite } = await import("../lib/backends/sqlite.ts");
    const { SqliteFlagStore } = await import("../lib/flags/store.ts");
    store = new SqliteFlagStore(openSqlite(s.DATA_DIR));
  }
  await store.migrate();
  let cache: FlagCache = new NoFlagCache();
  if (s.REDIS_HOST && s.FEATURE_FLAG_CACHE_TTL > 0) {
    const { createRedisFlagCache } = await import("../lib/backends/flag_cache_redis.ts");
    cache = createRedisFlagCache(s);
  }
  let events: FlagEventSink = new NoFlagEventSink();
  if (s.KAFKA_BOOTSTRAP_SERVERS) {
    const { createKafkaFlagEventSink } = await import("../lib/backends/flag_events_kafka.ts");
    events = createKafkaFlagEventSink(s.KAFKA_BOOTSTRAP_SERVERS, s.FEATURE_FLAG_KAFKA_TOPIC);
  }
  return { source, store, cache, events };
}
