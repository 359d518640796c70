/**
 * Opens the RegistryActor's adapters from its settings: the records' store (PostgreSQL when
 * DATABASE_URL is set, else SQLite in DATA_DIR), the live view (ZooKeeper when
 * ZOOKEEPER_HOSTS is set, else embedded), the backend monitor, and the Kafka publisher of
 * registry events. A driver loads only when its backend is configured.
 */
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { RegistryCalls } from "./registry_protocol.ts";
import { openSqlite } from "../lib/backends/sqlite.ts";
import { guardedStore, type RegistryStore, SqliteRegistryStore } from "../lib/registry/store.ts";
import { EmbeddedRegistry, type RegistryBackend } from "../lib/registry/backend.ts";

/** Where registry events go (REGISTRY_KAFKA_TOPIC), keyed by `service/instance`. */
export interface RegistryEventSink {
  publish(key: string, event: Record<string, unknown>): void;
  close(): Promise<void>;
}

/** What the RegistryActor works over. */
export interface RegistryAdapters {
  store: RegistryStore;
  backend: RegistryBackend;
  monitor: BackendMonitor;
  /** None when Kafka is not configured. */
  events?: RegistryEventSink | null;
}

/**
 * The adapters `ctx.settings` name. Leadership changes are sent as `leadership` events, and
 * the monitor reports at once so that `/health` shows the new role.
 */
export async function openRegistryAdapters(
  ctx: ActorContext<RegistryCalls>,
): Promise<RegistryAdapters> {
  const s = ctx.settings;
  let store: RegistryStore;
  if (s.DATABASE_URL) {
    const { createPostgres } = await import("../lib/backends/postgres.ts");
    const { PostgresRegistryStore } = await import("../lib/registry/store.ts");
    store = new PostgresRegistryStore(createPostgres(s.DATABASE_URL, { max: 4 }));
  } else {
    store = new SqliteRegistryStore(openSqlite(s.DATA_DIR));
  }
  // Below the actor call timeout, as the configuration store's calls are: an outage is a 503.
  store = guardedStore(store, Math.max(100, Math.min(4_000, s.ACTOR_CALL_TIMEOUT_MS - 500)));
  // Set below, before the backend starts: leadership is reported only from `start()` on.
  let monitor: BackendMonitor | undefined;
  const onLeadership = (leader: boolean) => {
    ctx.emit({ type: "leadership", leader });
    void monitor?.check(ctx);
  };
  let adapters: RegistryAdapters;
  if (s.ZOOKEEPER_HOSTS) {
    const { ZookeeperRegistry } = await import("../lib/registry/zookeeper_registry.ts");
    const { zookeeperProbe } = await import("../lib/backends/zookeeper.ts");
    const zk = new ZookeeperRegistry({
      hosts: s.ZOOKEEPER_HOSTS,
      basePath: s.ZOOKEEPER_BASE_PATH,
      sessionTimeoutMs: s.ZOOKEEPER_SESSION_TIMEOUT * 1000,
      connectTimeoutMs: s.ZOOKEEPER_CONNECTION_TIMEOUT * 1000,
      candidate: s.SERVICE_INSTANCE_ID,
      instanceHealthPath: s.ZOOKEEPER_INSTANCE_HEALTH_PATH,
      onLeadership,
    });
    monitor = new BackendMonitor([{
      ...zookeeperProbe(() => zk.session),
      describe: () => ({ role: zk.leader ? "leader" : "follower" }),
    }]);
    adapters = { store, backend: zk, monitor };
  } else {
    monitor = new BackendMonitor([], [{
      name: "registry",
      kind: "embedded",
      status: "up",
      role: "leader",
    }]);
    adapters = { store, backend: new EmbeddedRegistry({ onLeadership }), monitor };
  }
  if (s.KAFKA_BOOTSTRAP_SERVERS) {
    const { createKafka, EventPublisher } = await import("../lib/backends/kafka.ts");
    adapters.events = new EventPublisher(
      createKafka(s.KAFKA_BOOTSTRAP_SERVERS, "config-service-registry"),
      s.REGISTRY_KAFKA_TOPIC,
    );
  }
  return adapters;
}
