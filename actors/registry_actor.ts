/**
 * The RegistryActor's behaviour, over its adapters: the durable records (the source of truth,
 * heartbeat state included), the live view (ZooKeeper ephemerals, or the embedded view), the
 * Kafka publisher of registry events. Runs in its worker (registry_worker.ts) and, in tests,
 * without one.
 *
 * Every change to an instance runs in the mailbox queue of that instance
 * ({@link instanceKey}): messages through {@link entityOf}, the sweep through
 * `ctx.exclusive`. So a handler's reads and writes of one instance never interleave with
 * another's, and the last message to arrive decides its state.
 */
import type { ActorContext } from "./actor_host.ts";
import type { RegistryAdapters, RegistryEventSink } from "./registry_adapters.ts";
import type { InstanceRef, RegisterInput, RegistryCalls, Strategy } from "./registry_protocol.ts";
import type { HealthOutcome } from "./health_protocol.ts";
import type { RegistryStore } from "../lib/registry/store.ts";
import type { RegistryBackend } from "../lib/registry/backend.ts";
import type { BackendMonitor } from "./monitor.ts";
import { InstanceIndex } from "../lib/registry/instances.ts";
import { Balancer, type Instance } from "../lib/registry/model.ts";
import { registration, registrationId, registryEvent } from "../lib/registry/registration.ts";
import type { Collected } from "../lib/metrics.ts";
import { BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import { foreignConflict, ForeignInstances } from "./registry_foreign.ts";
import { PeerSync, SYNC_MS } from "./registry_peers.ts";
import { instanceKey } from "./registry_keys.ts";
import { sweepDue } from "./registry_sweep.ts";
import { log } from "../lib/log.ts";

type Ctx = ActorContext<RegistryCalls>;

/** How often the sweep runs (heartbeat TTLs, SERVICE_DEREGISTER_AFTER), and how soon a start
 * whose records could not be read tries again, ms. */
export const SWEEP_MS = 1_000;
export const LOAD_RETRY_MS = 1_000;

export { entityOf, instanceKey } from "./registry_keys.ts";

/** The registry: records, live view, balancing, heartbeat TTLs and health outcomes. */
export class RegistryActor {
  readonly #ctx: Ctx;
  readonly #store: RegistryStore;
  readonly #backend: RegistryBackend;
  readonly #monitor: BackendMonitor;
  readonly #events: RegistryEventSink | null;
  readonly #index = new InstanceIndex((service) => this.#changed(service));
  readonly #balancer = new Balancer();
  /** Services changed in this turn, reported to the main thread once per turn. */
  #changedServices: Set<string> | null = null;
  /** What other replicas write to the shared records (PostgreSQL). */
  readonly #peers: PeerSync;
  /** The records were read (at start, or by a `load` retry). */
  #loaded = false;

  constructor(ctx: Ctx, adapters: RegistryAdapters) {
    this.#ctx = ctx;
    this.#store = adapters.store;
    this.#backend = adapters.backend;
    this.#monitor = adapters.monitor;
    this.#events = adapters.events ?? null;
    this.#peers = new PeerSync({
      store: this.#store,
      index: this.#index,
      backend: this.#backend,
      exclusive: (service, id, fn) => this.#ctx.exclusive(instanceKey(service, id), fn),
      announce: (added, removed) => this.#announce(added, removed),
    });
  }

  /**
   * Loads the records, makes them live again (with ZooKeeper: once the session is open),
   * joins the leadership, announces the restored instances, and schedules the probes and
   * the sweep.
   */
  async start(): Promise<void> {
    const restored = await this.#loadOrRetry("registry records unreachable at start; retrying");
    this.#backend.start();
    this.#backend.watch?.(
      new ForeignInstances({
        exclusive: (service, id, fn) => this.#ctx.exclusive(instanceKey(service, id), fn),
        index: this.#index,
        announce: (added, removed) => this.#announce(added, removed),
        publish: (type, i, reason) => this.#publish(type, i, reason),
        vanished: (service, id) => this.#peers.vanished(service, id),
      }),
    );
    if (restored.length > 0) this.#announce(restored, []);
    this.#monitor.start(this.#ctx);
    this.#ctx.after(SWEEP_MS, { type: "sweep" });
    if (this.#peers.shared) this.#ctx.after(SYNC_MS, { type: "sync" });
  }

  /** Self-message while the records could not be read at start: tries again. */
  async load(): Promise<void> {
    if (this.#loaded) return;
    const restored = await this.#loadOrRetry();
    if (restored.length > 0) this.#announce(restored, []);
  }

  /** Reads the records and makes them live; on failure, tries again in LOAD_RETRY_MS. */
  async #loadOrRetry(warn?: string): Promise<Instance[]> {
    try {
      await this.#store.migrate();
      for (const i of await this.#store.list()) this.#index.set(i);
      const restored = this.#index.all().filter((i) => !i.source);
      for (const i of restored) void this.#backend.putLater(i);
      this.#loaded = true;
      return restored;
    } catch (err) {
      if (warn) log.warn(warn, { error: String(err) });
      if (!this.#ctx.signal.aborted) this.#ctx.after(LOAD_RETRY_MS, { type: "load" });
      return [];
    }
  }

  /** Until the records were read, this replica would answer that services do not exist. */
  #requireLoaded(): void {
    if (this.#loaded) return;
    throw new BackendUnavailableError("storage", "Registry records not loaded yet (retrying)");
  }

  /** Applies what other replicas wrote since the last read; schedules the next one. */
  async sync(): Promise<void> {
    await this.#peers.run();
    if (!this.#ctx.signal.aborted) this.#ctx.after(SYNC_MS, { type: "sync" });
  }

  /**
   * Announces every registration and this replica's leadership again: the HealthActor
   * restarted without its targets (see `wireHealth`).
   */
  reannounce(): void {
    this.#announce(this.#index.all(), []);
    this.#ctx.emit({ type: "leadership", leader: this.#backend.leader });
  }

  /** Closes the live view (its ephemerals go), the event publisher and the store. */
  async close(): Promise<void> {
    this.#backend.close();
    await this.#events?.close();
    await this.#store.close().catch(() => {});
  }

  status() {
    return this.#monitor.check(this.#ctx);
  }

  probe() {
    return this.#monitor.tick(this.#ctx);
  }

  metrics(): Collected[] {
    return [{
      name: "registry_instances",
      help: "Service instances by status and source (api: registered through the API; " +
        "zookeeper: registered in ZooKeeper by another client)",
      type: "gauge" as const,
      samples: this.#index.counts().map(({ value, ...labels }) => ({ labels, value })),
    }];
  }

  /** Every instance (durable view), by service. */
  all(): Instance[] {
    this.#requireLoaded();
    return this.#index.all();
  }

  /** @throws {NotFoundError} when the service has no instance. */
  answer(service: string, healthyOnly: boolean): string {
    this.#requireLoaded();
    return this.#index.answer(service, healthyOnly);
  }

  /** @throws {NotFoundError} when the service has no instance. */
  instances(service: string): Instance[] {
    this.#requireLoaded();
    const list = this.#index.byService(service);
    if (list.length === 0) throw new NotFoundError(`No service ${service} is registered`);
    return list;
  }

  /**
   * A healthy instance of `service` by `strategy`.
   * @throws {NotFoundError} when the service has no instance.
   * @throws {BackendUnavailableError} when none of them is healthy.
   */
  pick(service: string, strategy?: Strategy): Instance {
    return this.#balancer.pickHealthy(service, this.instances(service), strategy);
  }

  /**
   * Registers (or updates) an instance: durable first, then live; the acknowledgement means
   * both. Registering again with the same address keeps what health checks and heartbeats
   * learned.
   * @throws {ValidationError} for an invalid name or URL, or a probe target outside
   *   HEALTH_CHECK_ALLOWED_NETWORKS.
   * @throws {BackendUnavailableError} when the live view cannot be written (the previous
   *   registration, if any, is restored).
   */
  async register(input: RegisterInput): Promise<{ instance: Instance; created: boolean }> {
    let known: string | null = null;
    try {
      known = registrationId(input);
    } catch { /* refused by registration() below */ }
    if (known !== null) {
      this.#peers.touched(input.service_name, known);
      await this.#peers.known(input.service_name, known);
    }
    const { instance, prev } = registration(
      input,
      (id) => this.#index.get(input.service_name, id),
      {
        allowedNetworks: this.#ctx.settings.HEALTH_CHECK_ALLOWED_NETWORKS,
        now: new Date().toISOString(),
      },
    );
    const id = instance.instance_id;
    if (prev?.source) throw foreignConflict(prev, "register an instance with its id");
    const created = await this.#store.upsert(instance);
    this.#index.set(instance);
    try {
      await this.#backend.put(instance);
    } catch (err) {
      // Not acknowledged, so not registered: put back what was there before.
      if (prev) {
        await this.#store.upsert(prev);
        this.#index.set(prev);
        await this.#backend.putLater(prev);
      } else {
        await this.#store.remove(instance.service_name, id);
        this.#index.delete(instance.service_name, id);
        this.#backend.forget(instance.service_name, id);
      }
      throw err;
    }
    this.#announce([instance], []);
    this.#publish(prev ? "updated" : "registered", instance);
    log.info("instance registered", { service: instance.service_name, instance: id, created });
    return { instance, created: !prev && created };
  }

  /**
   * Removes an instance: its record, then its znode (which, failing, follows when the session
   * reconnects or expires).
   * @throws {NotFoundError} when it is not registered.
   */
  async deregister(ref: InstanceRef, why = "deregistered"): Promise<Instance> {
    const { service, id } = ref;
    this.#peers.touched(service, id);
    const prev = await this.#peers.known(service, id);
    if (!prev) throw new NotFoundError(`No instance ${id} of ${service}`);
    if (prev.source) throw foreignConflict(prev, "deregister it");
    await this.#store.remove(service, id);
    this.#index.delete(service, id);
    await this.#backend.remove(service, id).catch((err) => {
      log.warn("znode removal failed", { service, instance: id, error: String(err) });
    });
    this.#announce([], [{ service, id }]);
    this.#publish("deregistered", prev, why);
    log.info("instance deregistered", { service, instance: id, reason: why });
    return prev;
  }

  /**
   * Records a heartbeat; after a missed one, restores the status from before the miss (or
   * what a health check found since).
   * @throws {NotFoundError} when the instance is not registered.
   */
  async heartbeat({ service, id }: InstanceRef): Promise<Instance> {
    this.#peers.touched(service, id);
    const i = await this.#peers.known(service, id);
    if (!i) throw new NotFoundError(`No instance ${id} of ${service}`);
    if (i.source) throw foreignConflict(i, "heartbeat it");
    const at = new Date().toISOString();
    await this.#store.heartbeat(service, id, at);
    const beat: Instance = { ...i, last_heartbeat: at };
    const before = i.missed_heartbeat;
    if (!before) {
      this.#index.set(beat);
      return beat;
    }
    return await this.#apply(beat, {
      ...beat,
      status: before,
      unhealthy_since: before === "unhealthy" ? i.unhealthy_since : null,
      missed_heartbeat: null,
    });
  }

  /**
   * Records a health check's outcome; null when the instance is gone. An instance that
   * missed its heartbeat stays unhealthy until it heartbeats: the outcome is kept for then.
   */
  async healthResult(o: HealthOutcome): Promise<Instance | null> {
    const i = this.#index.get(o.service, o.id);
    if (!i) return null;
    const check = { last_health_check: o.checked_at, last_check_latency_ms: o.latency_ms ?? null };
    if (i.disabled) {
      return await this.#setHealth(i, false, check, "taken out of service by its owner");
    }
    if (i.missed_heartbeat) {
      const found = o.healthy ? "healthy" : "unhealthy";
      return await this.#setHealth(i, false, check, "missed heartbeat", found);
    }
    return await this.#setHealth(i, o.healthy, check, o.reason);
  }

  /** The heartbeat-TTL and deregister-after sweep (actors/registry_sweep.ts). */
  async sweep(): Promise<void> {
    try {
      // With ZooKeeper, one replica (the leader) decides for every instance.
      if (this.#backend.kind === "zookeeper" && !this.#backend.leader) return;
      await sweepDue({
        index: this.#index,
        settings: this.#ctx.settings,
        signal: this.#ctx.signal,
        exclusive: (service, id, fn) => this.#ctx.exclusive(instanceKey(service, id), fn),
        refresh: (service, id) => this.#peers.refresh(service, id),
        missed: (i) => this.#setHealth(i, false, i, "missed heartbeat", i.status),
        expire: (ref) =>
          this.deregister(ref, "unhealthy longer than SERVICE_DEREGISTER_AFTER").then(() => {}),
      });
    } finally {
      this.#ctx.after(SWEEP_MS, { type: "sweep" });
    }
  }

  /**
   * Records a health outcome. `check` is the health check's time and latency, or (for
   * heartbeat outcomes, which are no health check) the instance's unchanged ones. `missed` is
   * the status a heartbeat will restore (default: unchanged).
   */
  #setHealth(
    i: Instance,
    healthy: boolean,
    check: Pick<Instance, "last_health_check" | "last_check_latency_ms">,
    reason?: string,
    missed = i.missed_heartbeat ?? null,
  ): Promise<Instance> {
    return this.#apply(i, {
      ...i,
      status: healthy ? "healthy" : "unhealthy",
      last_health_check: check.last_health_check,
      last_check_latency_ms: check.last_check_latency_ms ?? null,
      unhealthy_since: healthy ? null : (i.unhealthy_since ?? new Date().toISOString()),
      missed_heartbeat: missed,
    }, reason);
  }

  /** Makes `next` (a new health state of `i`) the instance's state: memory, record, live view. */
  async #apply(i: Instance, next: Instance, reason?: string): Promise<Instance> {
    if (next.status !== i.status) {
      log.info("instance health changed", {
        service: i.service_name,
        instance: i.instance_id,
        from: i.status,
        to: next.status,
        reason,
      });
      if (next.status !== "registered") this.#publish(next.status, next, reason);
    }
    this.#index.set(next);
    // Others' instances are neither stored nor written: their health lives here only.
    if (next.source) return next;
    this.#peers.touched(i.service_name, i.instance_id);
    await this.#store.setHealth(i.service_name, i.instance_id, next);
    await this.#backend.putLater(next);
    return next;
  }

  #announce(added: Instance[], removed: InstanceRef[]): void {
    this.#ctx.emit({
      type: "registry_changed",
      added: added.map((i) => ({
        service: i.service_name,
        id: i.instance_id,
        health_check_url: i.health_check_url,
        service_url: i.service_url,
      })),
      removed,
    });
  }

  /** Publishes a registry event to REGISTRY_KAFKA_TOPIC (keyed by service/instance). */
  #publish(type: string, i: Instance, reason?: string): void {
    this.#events?.publish(`${i.service_name}/${i.instance_id}`, registryEvent(type, i, reason));
  }

  #changed(service: string): void {
    if (!this.#changedServices) {
      this.#changedServices = new Set();
      queueMicrotask(() => {
        const services = [...this.#changedServices!];
        this.#changedServices = null;
        this.#ctx.emit({ type: "registry_services_changed", services });
      });
    }
    this.#changedServices.add(service);
  }
}
