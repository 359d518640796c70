/// <reference lib="deno.worker" />
/**
 * RegistryActor: owns the durable registration records (SQLite or PostgreSQL) and the
 * ZooKeeper session whose ephemeral znodes are the live view (or nothing more when
 * ZooKeeper is not configured: the records are the registry). Balances `url` picks.
 */
import { serveActor } from "./actor_host.ts";
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { RegisterInput, RegistryCalls } from "./registry_protocol.ts";
import { openSqlite } from "../lib/backends/sqlite.ts";
import { type RegistryStore, SqliteRegistryStore } from "../lib/registry/store.ts";
import {
  Balancer,
  checkName,
  checkProbeTarget,
  type Instance,
  instanceIdFor,
  instanceView as view,
  parseServiceUrl,
} from "../lib/registry/model.ts";
import { EmbeddedRegistry, type RegistryBackend } from "../lib/registry/backend.ts";
import type { EventPublisher } from "../lib/backends/kafka.ts";
import { BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";

type Ctx = ActorContext<RegistryCalls>;

const SWEEP_MS = 1_000;

let monitor: BackendMonitor;
let store: RegistryStore;
let backend: RegistryBackend;
let events: EventPublisher | null = null;
/**
 * Instances marked unhealthy for a missed heartbeat, with their status before: a heartbeat
 * restores it (a TTL check is its own check, as in Consul), and a passing health check alone
 * does not.
 */
const missedHeartbeat = new Map<string, Instance["status"]>();

/** Publishes a registry event to REGISTRY_KAFKA_TOPIC (keyed by service/instance). */
function publish(type: string, i: Instance, reason?: string): void {
  events?.publish(keyOf(i.service_name, i.instance_id), {
    event_id: crypto.randomUUID(),
    type,
    service_name: i.service_name,
    instance_id: i.instance_id,
    service_url: i.service_url,
    status: i.status,
    ...(reason ? { reason } : {}),
    at: new Date().toISOString(),
  });
}
const balancer = new Balancer();

const keyOf = (service: string, id: string) => `${service}/${id}`;

/** Per service: its instances sorted by id, and its ready JSON answers; dropped on change. */
const services = new Map<string, Map<string, Instance>>();
const sorted = new Map<string, Instance[]>();
const answers = new Map<string, string>();

function setInstance(i: Instance): void {
  let m = services.get(i.service_name);
  if (!m) services.set(i.service_name, m = new Map());
  m.set(i.instance_id, i);
  changed(i.service_name);
}

function deleteInstance(service: string, id: string): void {
  const m = services.get(service);
  m?.delete(id);
  if (m?.size === 0) services.delete(service);
  changed(service);
}

/** Services changed in this turn, reported to the main thread once per turn. */
let changedServices: Set<string> | null = null;
let actorCtx: Ctx | null = null;

function changed(service: string): void {
  if (!changedServices) {
    changedServices = new Set();
    queueMicrotask(() => {
      const services = [...changedServices!];
      changedServices = null;
      actorCtx?.emit({ type: "registry_services_changed", services });
    });
  }
  changedServices.add(service);
  sorted.delete(service);
  answers.delete(`${service}\u0000all`);
  answers.delete(`${service}\u0000healthy`);
}

function getInstance(service: string, id: string): Instance | undefined {
  return services.get(service)?.get(id);
}

function allInstances(): Instance[] {
  return [...services.values()].flatMap((m) => [...m.values()]);
}

function byService(service: string): Instance[] {
  let list = sorted.get(service);
  if (!list) {
    list = [...(services.get(service)?.values() ?? [])]
      .sort((a, b) => a.instance_id.localeCompare(b.instance_id));
    sorted.set(service, list);
  }
  return list;
}

/** The JSON answer `{service_name, instances}` of a service, built once per change. */
function serviceAnswer(service: string, healthyOnly: boolean): string {
  const key = `${service}\u0000${healthyOnly ? "healthy" : "all"}`;
  let body = answers.get(key);
  if (body === undefined) {
    const list = byService(service);
    if (list.length === 0) throw new NotFoundError(`No service ${service} is registered`);
    body = JSON.stringify({
      service_name: service,
      instances: (healthyOnly ? list.filter((i) => i.status === "healthy") : list).map(view),
    });
    answers.set(key, body);
  }
  return body;
}

function announce(ctx: Ctx, added: Instance[], removed: string[]): void {
  ctx.emit({
    type: "registry_changed",
    added: added.map((i) => ({
      key: keyOf(i.service_name, i.instance_id),
      health_check_url: i.health_check_url,
      service_url: i.service_url,
    })),
    removed,
  });
}

async function register(input: RegisterInput, ctx: Ctx) {
  const s = ctx.settings;
  checkName(input.service_name, "service_name");
  parseServiceUrl(input.service_url, "service_url");
  const healthUrl = input.health_check_url ?? `${input.service_url.replace(/\/+$/, "")}/health`;
  if (input.health_check_url) parseServiceUrl(healthUrl, "health_check_url");
  checkProbeTarget(input.service_url, "service_url", s.HEALTH_CHECK_ALLOWED_NETWORKS);
  checkProbeTarget(healthUrl, "health_check_url", s.HEALTH_CHECK_ALLOWED_NETWORKS);
  const id = instanceIdFor(input.service_name, input.service_url, input.metadata);
  checkName(id, "metadata.instance_id");
  const prev = getInstance(input.service_name, id);
  const now = new Date().toISOString();
  const same = prev && prev.service_url === input.service_url &&
    prev.health_check_url === healthUrl;
  const instance: Instance = {
    service_name: input.service_name,
    instance_id: id,
    service_url: input.service_url,
    health_check_url: healthUrl,
    metadata: input.metadata,
    // Registering again with the same address keeps what health checks learned.
    status: same ? prev.status : "registered",
    last_health_check: same ? prev.last_health_check : null,
    registered_at: prev?.registered_at ?? now,
    ttl_seconds: input.ttl_seconds ?? null,
    last_heartbeat: input.ttl_seconds ? now : null,
    unhealthy_since: same ? prev.unhealthy_since : null,
  };
  // Durable first, then the znode: the acknowledgement means both.
  const created = await store.upsert(instance);
  setInstance(instance);
  try {
    await backend.put(instance);
  } catch (err) {
    // Not acknowledged, so not registered: put back what was there before.
    if (prev) {
      await store.upsert(prev);
      setInstance(prev);
      await backend.putLater(prev);
    } else {
      await store.remove(instance.service_name, id);
      deleteInstance(instance.service_name, id);
      backend.forget(instance.service_name, id);
    }
    throw err;
  }
  announce(ctx, [instance], []);
  publish(prev ? "updated" : "registered", instance);
  log.info("instance registered", { service: instance.service_name, instance: id, created });
  return { instance, created: !prev && created };
}

async function remove(service: string, id: string, ctx: Ctx, why: string): Promise<Instance> {
  const key = keyOf(service, id);
  const prev = getInstance(service, id);
  if (!prev) throw new NotFoundError(`No instance ${id} of ${service}`);
  await store.remove(service, id);
  deleteInstance(service, id);
  missedHeartbeat.delete(key);
  await backend.remove(service, id).catch((err) => {
    // The record is gone; the znode follows when the session reconnects or expires.
    log.warn("znode removal failed", { service, instance: id, error: String(err) });
  });
  announce(ctx, [], [key]);
  publish("deregistered", prev, why);
  log.info("instance deregistered", { service, instance: id, reason: why });
  return prev;
}

/**
 * Records a health outcome. `checkedAt` is the health check's time, or (for heartbeat
 * outcomes, which are no health check) the unchanged `last_health_check`.
 */
async function setHealth(
  i: Instance,
  healthy: boolean,
  checkedAt: string | null,
  reason?: string,
): Promise<Instance> {
  const status = healthy ? "healthy" : "unhealthy";
  const now = new Date().toISOString();
  const next: Instance = {
    ...i,
    status,
    last_health_check: checkedAt,
    unhealthy_since: healthy ? null : (i.unhealthy_since ?? now),
  };
  if (status !== i.status) {
    log.info("instance health changed", {
      service: i.service_name,
      instance: i.instance_id,
      from: i.status,
      to: status,
      reason,
    });
    publish(status, next, reason);
  }
  setInstance(next);
  await store.setHealth(i.service_name, i.instance_id, next);
  await backend.putLater(next);
  return next;
}

/** Heartbeat TTLs and SERVICE_DEREGISTER_AFTER: nothing disappears silently otherwise. */
async function sweep(ctx: Ctx): Promise<void> {
  const now = Date.now();
  const after = ctx.settings.SERVICE_DEREGISTER_AFTER * 1000;
  for (const i of allInstances()) {
    try {
      if (i.ttl_seconds && i.last_heartbeat && i.status !== "unhealthy") {
        if (now - Date.parse(i.last_heartbeat) > i.ttl_seconds * 1000) {
          log.warn("instance missed its heartbeat", {
            service: i.service_name,
            instance: i.instance_id,
          });
          missedHeartbeat.set(keyOf(i.service_name, i.instance_id), i.status);
          await setHealth(i, false, i.last_health_check, "missed heartbeat");
          continue;
        }
      }
      if (after > 0 && i.unhealthy_since && now - Date.parse(i.unhealthy_since) > after) {
        await remove(
          i.service_name,
          i.instance_id,
          ctx,
          "unhealthy longer than SERVICE_DEREGISTER_AFTER",
        );
      }
    } catch (err) {
      log.warn("registry sweep failed for an instance", { error: String(err) });
    }
  }
}

serveActor<RegistryCalls>({
  async init(ctx) {
    const s = ctx.settings;
    actorCtx = ctx;
    if (s.DATABASE_URL) {
      const { createPostgres } = await import("../lib/backends/postgres.ts");
      const { PostgresRegistryStore } = await import("../lib/registry/store.ts");
      store = new PostgresRegistryStore(createPostgres(s.DATABASE_URL, { max: 4 }));
    } else {
      store = new SqliteRegistryStore(openSqlite(s.DATA_DIR));
    }
    await store.migrate();
    for (const i of await store.list()) setInstance(i);
    const onLeadership = (leader: boolean) => {
      ctx.emit({ type: "leadership", leader });
      // /health shows the role: report now rather than at the next 5 s probe.
      void monitor?.check(ctx);
    };
    if (s.ZOOKEEPER_HOSTS) {
      // The driver loads only when ZooKeeper is configured.
      const { ZookeeperRegistry } = await import("../lib/registry/zookeeper_registry.ts");
      const { zookeeperProbe } = await import("../lib/backends/zookeeper.ts");
      const zk = new ZookeeperRegistry({
        hosts: s.ZOOKEEPER_HOSTS,
        basePath: s.ZOOKEEPER_BASE_PATH,
        sessionTimeoutMs: s.ZOOKEEPER_SESSION_TIMEOUT * 1000,
        connectTimeoutMs: s.ZOOKEEPER_CONNECTION_TIMEOUT * 1000,
        candidate: s.SERVICE_INSTANCE_ID,
        onLeadership,
      });
      backend = zk;
      monitor = new BackendMonitor([{
        ...zookeeperProbe(() => zk.session),
        describe: () => ({ role: zk.leader ? "leader" : "follower" }),
      }]);
    } else {
      backend = new EmbeddedRegistry({ onLeadership });
      monitor = new BackendMonitor([], [{
        name: "registry",
        kind: "embedded",
        status: "up",
        role: "leader",
      }]);
    }
    // Restored records are made live again (with ZooKeeper: once the session is open).
    for (const i of allInstances()) void backend.putLater(i);
    backend.start();
    if (s.KAFKA_BOOTSTRAP_SERVERS) {
      const { createKafka, EventPublisher } = await import("../lib/backends/kafka.ts");
      events = new EventPublisher(
        createKafka(s.KAFKA_BOOTSTRAP_SERVERS, "config-service-registry"),
        s.REGISTRY_KAFKA_TOPIC,
      );
    }
    const restored = allInstances();
    if (restored.length > 0) announce(ctx, restored, []);
    monitor.start(ctx);
    ctx.after(SWEEP_MS, { type: "sweep" });
  },
  async handle(msg, ctx) {
    switch (msg.type) {
      case "metrics": {
        const by = new Map<string, number>();
        for (const i of allInstances()) by.set(i.status, (by.get(i.status) ?? 0) + 1);
        return [{
          name: "registry_instances",
          help: "Registered service instances by status",
          type: "gauge" as const,
          samples: [...by].map(([status, value]) => ({ labels: { status }, value })),
        }];
      }
      case "ping":
        return { actor: "registry", ok: true };
      case "status":
        return await monitor.check(ctx);
      case "probe":
        return await monitor.tick(ctx);
      case "register":
        return await register(msg.input, ctx);
      case "deregister":
        return await remove(msg.service, msg.id, ctx, "deregistered");
      case "heartbeat": {
        const i = getInstance(msg.service, msg.id);
        if (!i) throw new NotFoundError(`No instance ${msg.id} of ${msg.service}`);
        const at = new Date().toISOString();
        await store.heartbeat(msg.service, msg.id, at);
        let next: Instance = { ...i, last_heartbeat: at };
        setInstance(next);
        // A heartbeat after a missed one restores the status from before the miss.
        const before = missedHeartbeat.get(keyOf(msg.service, msg.id));
        if (before !== undefined) {
          missedHeartbeat.delete(keyOf(msg.service, msg.id));
          if (before === "healthy") next = await setHealth(next, true, i.last_health_check);
          else {
            next = { ...next, status: before, unhealthy_since: null };
            setInstance(next);
            await store.setHealth(msg.service, msg.id, next);
            await backend.putLater(next);
          }
        }
        return next;
      }
      case "all":
        return allInstances();
      case "answer":
        return serviceAnswer(msg.service, msg.healthy_only);
      case "instances": {
        const list = byService(msg.service);
        if (list.length === 0) throw new NotFoundError(`No service ${msg.service} is registered`);
        return list;
      }
      case "pick": {
        const list = byService(msg.service);
        if (list.length === 0) throw new NotFoundError(`No service ${msg.service} is registered`);
        const chosen = balancer.pick(
          msg.service,
          list.filter((i) => i.status === "healthy"),
          msg.strategy,
        );
        if (!chosen) {
          throw new BackendUnavailableError(
            "registry",
            `No healthy instance of ${msg.service} (${list.length} registered)`,
          );
        }
        return chosen;
      }
      case "health_result": {
        const key = keyOf(msg.service, msg.id);
        const i = getInstance(msg.service, msg.id);
        if (!i) return null;
        if (missedHeartbeat.has(key)) {
          // Still unhealthy until it heartbeats: remember what the check found for then.
          if (msg.healthy) missedHeartbeat.set(key, "healthy");
          return await setHealth(i, false, msg.checked_at, "missed heartbeat");
        }
        return await setHealth(i, msg.healthy, msg.checked_at, msg.reason);
      }
      case "sweep":
        try {
          await sweep(ctx);
        } finally {
          ctx.after(SWEEP_MS, { type: "sweep" });
        }
        return;
      default: {
        const never: never = msg;
        throw new Error(`RegistryActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    backend?.close();
    await events?.close();
    await store?.close().catch(() => {});
  },
});
