/**
 * The ConfigActor's backends as the settings choose them: PostgreSQL or SQLite, Redis or
 * no shared cache, Kafka or no events. Drivers load only when their backend is configured:
 * on the embedded defaults the worker never compiles postgres.js, ioredis or kafkajs (less
 * memory, faster start).
 */
import type { ConfigBackends } from "./config_actor.ts";
import type { BackendStatus } from "./protocol.ts";
import { type BackendProbe, disabledStatus } from "../lib/backend.ts";
import { openSqlite, sqliteProbe } from "../lib/backends/sqlite.ts";
import { SqliteConfigStore } from "../lib/config/sqlite_store.ts";
import { loadSecretBox } from "../lib/config/secrets.ts";
import { ConfigSnapshot } from "../lib/config/snapshot.ts";
import { storeNamespace } from "../lib/backends/namespace.ts";
import type { ConfigStore } from "../lib/config/store.ts";
import {
  type InvalidationChannel,
  type L2Cache,
  LocalRelayLock,
  NullInvalidationChannel,
  NullL2Cache,
  type RelayLock,
} from "../lib/config/adapters.ts";
import type { Settings } from "../lib/settings.ts";

/**
 * Opens (lazily connects) every backend `s` configures.
 * @throws when the encryption key is malformed or the SQLite file cannot be opened; an
 *   unreachable server is not an error here (the actor retries).
 */
export async function openConfigBackends(s: Settings): Promise<ConfigBackends> {
  const secrets = await loadSecretBox(s);
  const probes: BackendProbe[] = [];
  const fixed: BackendStatus[] = [];
  let store: ConfigStore;
  let lock: RelayLock = new LocalRelayLock();
  let l2: L2Cache = new NullL2Cache();
  let channel: InvalidationChannel = new NullInvalidationChannel();
  let outbox: ConfigBackends["outbox"];
  if (s.DATABASE_URL) {
    const { createPostgres, postgresProbe } = await import("../lib/backends/postgres.ts");
    const { PostgresConfigStore } = await import("../lib/config/postgres_store.ts");
    const { PostgresRelayLock } = await import("../lib/config/postgres_relay_lock.ts");
    const sql = createPostgres(s.DATABASE_URL, { max: s.DATABASE_POOL_SIZE });
    probes.push(postgresProbe(sql));
    store = new PostgresConfigStore(sql);
    lock = new PostgresRelayLock(sql, { instance: s.SERVICE_INSTANCE_ID });
  } else {
    const db = openSqlite(s.DATA_DIR);
    probes.push(sqliteProbe(db));
    store = new SqliteConfigStore(db);
  }
  const storeName = s.DATABASE_URL ?? `sqlite:${Deno.realPathSync(s.DATA_DIR)}`;
  if (s.REDIS_HOST) {
    const { openRedisAdapters } = await import("../lib/config/redis_adapters.ts");
    const redis = openRedisAdapters(s, storeName);
    l2 = redis.l2;
    channel = redis.channel;
    probes.push(redis.probe);
  } else fixed.push(disabledStatus("cache", "none"));
  if (s.KAFKA_BOOTSTRAP_SERVERS) {
    const { createKafka, createProducer, kafkaProbe } = await import("../lib/backends/kafka.ts");
    const { KafkaOutboxSink } = await import("../lib/config/kafka_outbox.ts");
    const kafka = createKafka(s.KAFKA_BOOTSTRAP_SERVERS);
    probes.push(kafkaProbe(kafka.admin()));
    outbox = {
      sink: new KafkaOutboxSink(createProducer(kafka), s.KAFKA_TOPIC_CONFIG_UPDATES),
      lock,
    };
  } else fixed.push(disabledStatus("events", "none"));
  const snapshot = new ConfigSnapshot({
    dir: s.DATA_DIR,
    namespace: storeNamespace(storeName),
    maxEntries: s.CONFIG_CACHE_MAX_ENTRIES,
  });
  await snapshot.load();
  return { store, l2, channel, outbox, secrets, probes, fixed, snapshot };
}
