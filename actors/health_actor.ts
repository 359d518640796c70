/**
 * The HealthActor's behaviour: checks registered instances on a jittered schedule with
 * bounded concurrency, never two checks of one instance at once, each probe with a timeout
 * and retried with exponential backoff; reports outcomes as `health_results` events. Runs in
 * its worker (health_worker.ts) and, in tests, without one.
 */
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { HealthCalls, HealthOutcome, HealthTarget } from "./health_protocol.ts";
import type { InstanceRef } from "./registry_protocol.ts";
import { probe, type ProbeSettings, roundMs } from "../lib/health/prober.ts";
import { Scheduler } from "../lib/health/scheduler.ts";
import { checkProbeTarget } from "../lib/registry/model.ts";
import type { Collected } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";

type Ctx = ActorContext<HealthCalls>;

/** The scheduler's key of an instance (the scheduler knows keys, not instances). */
const keyOf = (t: InstanceRef) => `${t.service}/${t.id}`;

/** Health checking of the instances the registry announces, on the leading replica. */
export class HealthActor {
  readonly #ctx: Ctx;
  readonly #monitor = new BackendMonitor([]);
  readonly #targets = new Map<string, HealthTarget>();
  readonly #last = new Map<string, HealthOutcome>();
  /** Keys whose next check was asked for by `check_now`. */
  readonly #manual = new Set<string>();
  readonly #scheduler: Scheduler;
  readonly #probe: ProbeSettings;
  /** SERVICE_HEALTH_CHECK_ENABLED=false stops the schedule; manual checks still work. */
  readonly #enabled: boolean;
  #active = false;

  constructor(ctx: Ctx) {
    const s = ctx.settings;
    this.#ctx = ctx;
    this.#probe = {
      timeoutMs: s.HEALTH_CHECK_TIMEOUT * 1000,
      maxRetries: s.HEALTH_CHECK_MAX_RETRIES,
      initialRetryDelayMs: s.HEALTH_CHECK_INITIAL_RETRY_DELAY * 1000,
      maxRetryDelayMs: s.HEALTH_CHECK_MAX_RETRY_DELAY * 1000,
      backoff: s.HEALTH_CHECK_RETRY_BACKOFF,
      additionalEndpoints: s.HEALTH_CHECK_ADDITIONAL_ENDPOINTS,
      allowedNetworks: s.HEALTH_CHECK_ALLOWED_NETWORKS,
    };
    this.#scheduler = new Scheduler({
      intervalMs: s.SERVICE_HEALTH_CHECK_INTERVAL * 1000,
      concurrency: s.HEALTH_CHECK_CONCURRENCY,
      // ±5 %: enough to keep instances registered together from being probed in lockstep,
      // while a check stays within half a second of its interval at 10 s.
      jitter: 0.05,
      check: (key) =>
        this.#check(key).catch((err) =>
          log.warn("health check failed", { key, error: String(err) })
        ),
    });
    this.#enabled = s.SERVICE_HEALTH_CHECK_ENABLED;
  }

  status() {
    return this.#monitor.check(this.#ctx);
  }

  probe() {
    return this.#monitor.last;
  }

  metrics(): Collected[] {
    return [{
      name: "health_check_targets",
      help: "Instances the HealthActor checks (on the leading replica)",
      type: "gauge" as const,
      samples: [{ value: this.#active && this.#enabled ? this.#targets.size : 0 }],
    }];
  }

  /** Starts (or updates) checking these instances. */
  track(targets: HealthTarget[]): void {
    for (const t of targets) {
      const key = keyOf(t);
      this.#targets.set(key, t);
      if (!this.#scheduler.has(key)) this.#scheduler.add(key);
    }
  }

  /** Stops checking these instances and forgets their outcomes. */
  untrack(targets: InstanceRef[]): void {
    for (const t of targets) {
      const key = keyOf(t);
      this.#targets.delete(key);
      this.#last.delete(key);
      this.#scheduler.remove(key);
    }
  }

  /** Runs the schedule (when enabled) only while `active`: the registry says who leads. */
  async setActive(active: boolean): Promise<void> {
    if (active === this.#active) return;
    this.#active = active;
    if (active && this.#enabled) this.#scheduler.start();
    else if (!active) await this.#scheduler.stop();
  }

  /**
   * Checks these instances now (one attempt each, waiting for a check already running) and
   * answers the outcomes of those tracked.
   */
  async checkNow(targets: InstanceRef[]): Promise<HealthOutcome[]> {
    const known = targets.map(keyOf).filter((k) => this.#targets.has(k));
    for (const k of known) this.#manual.add(k);
    await Promise.all(known.map((k) => this.#scheduler.runNow(k)));
    return known.map((k) => this.#last.get(k)).filter((o): o is HealthOutcome => !!o);
  }

  /** Stops the schedule; resolves when running checks finished. */
  async close(): Promise<void> {
    await this.#scheduler.stop();
  }

  async #check(key: string): Promise<void> {
    const t = this.#targets.get(key);
    if (!t) return;
    const ref = { service: t.service, id: t.id };
    let outcome: HealthOutcome;
    try {
      // Checked again at probe time: the guard must hold even for restored records.
      checkProbeTarget(t.health_check_url, "health_check_url", this.#probe.allowedNetworks ?? []);
      // A check asked for now answers within one timeout: one attempt, no retries.
      const once = this.#manual.delete(key);
      const settings = once ? { ...this.#probe, maxRetries: 0 } : this.#probe;
      const r = await probe(t, settings, this.#ctx.signal);
      outcome = {
        ...ref,
        healthy: r.healthy,
        checked_at: r.checked_at,
        latency_ms: roundMs(r),
        reason: r.reason,
      };
    } catch (err) {
      outcome = {
        ...ref,
        healthy: false,
        checked_at: new Date().toISOString(),
        reason: err instanceof Error ? err.message : String(err),
      };
    }
    // A check cut short by the actor stopping says nothing about the instance: the service is
    // shutting down, and the registry (stopping too) must not record it as unhealthy.
    if (!this.#targets.has(key) || this.#ctx.signal.aborted) return;
    this.#last.set(key, outcome);
    this.#ctx.emit({ type: "health_results", results: [outcome] });
  }
}
