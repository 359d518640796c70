/// <reference lib="deno.worker" />
/**
 * HealthActor: checks registered instances on a jittered schedule with bounded
 * concurrency, never two checks of one instance at once, each probe with a timeout and
 * retried with exponential backoff; reports outcomes as events (the main thread hands them
 * to the RegistryActor).
 */
import { serveActor } from "./actor_host.ts";
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { HealthCalls } from "./health_protocol.ts";
import type { HealthOutcome, HealthTarget } from "./protocol.ts";
import { probe, type ProbeSettings } from "../lib/health/prober.ts";
import { Scheduler } from "../lib/health/scheduler.ts";
import { checkProbeTarget } from "../lib/registry/model.ts";
import { log } from "../lib/log.ts";

type Ctx = ActorContext<HealthCalls>;

const monitor = new BackendMonitor([]);
const targets = new Map<string, HealthTarget>();
const last = new Map<string, HealthOutcome>();
let scheduler: Scheduler;
let settings: ProbeSettings;
let allowed: string[] = [];
/** SERVICE_HEALTH_CHECK_ENABLED=false stops the schedule; manual checks still work. */
let enabled = true;
let active = false;
/** Keys whose next check was asked for by `check_now`. */
const manual = new Set<string>();

async function check(key: string, ctx: Ctx): Promise<void> {
  const t = targets.get(key);
  if (!t) return;
  let outcome: HealthOutcome;
  try {
    // Checked again at probe time: the guard must hold even for restored records.
    checkProbeTarget(t.health_check_url, "health_check_url", allowed);
    // A check asked for now answers within one timeout: one attempt, no retries.
    const once = manual.delete(key);
    const r = await probe(t, once ? { ...settings, maxRetries: 0 } : settings, ctx.signal);
    outcome = { key, healthy: r.healthy, checked_at: r.checked_at, reason: r.reason };
  } catch (err) {
    outcome = {
      key,
      healthy: false,
      checked_at: new Date().toISOString(),
      reason: err instanceof Error ? err.message : String(err),
    };
  }
  // A check cut short by the actor stopping says nothing about the instance: the service is
  // shutting down, and the registry (stopping too) must not record it as unhealthy.
  if (!targets.has(key) || ctx.signal.aborted) return;
  last.set(key, outcome);
  ctx.emit({ type: "health_results", results: [outcome] });
}

serveActor<HealthCalls>({
  init(ctx) {
    const s = ctx.settings;
    allowed = s.HEALTH_CHECK_ALLOWED_NETWORKS;
    settings = {
      timeoutMs: s.HEALTH_CHECK_TIMEOUT * 1000,
      maxRetries: s.HEALTH_CHECK_MAX_RETRIES,
      initialRetryDelayMs: s.HEALTH_CHECK_INITIAL_RETRY_DELAY * 1000,
      maxRetryDelayMs: s.HEALTH_CHECK_MAX_RETRY_DELAY * 1000,
      backoff: s.HEALTH_CHECK_RETRY_BACKOFF,
      additionalEndpoints: s.HEALTH_CHECK_ADDITIONAL_ENDPOINTS,
      allowedNetworks: s.HEALTH_CHECK_ALLOWED_NETWORKS,
    };
    scheduler = new Scheduler({
      intervalMs: s.SERVICE_HEALTH_CHECK_INTERVAL * 1000,
      concurrency: s.HEALTH_CHECK_CONCURRENCY,
      // ±5 %: enough to keep instances registered together from being probed in lockstep,
      // while a check stays within half a second of its interval at 10 s.
      jitter: 0.05,
      check: (key) =>
        check(key, ctx).catch((err) =>
          log.warn("health check failed", { key, error: String(err) })
        ),
    });
    enabled = s.SERVICE_HEALTH_CHECK_ENABLED;
  },
  async handle(msg, ctx) {
    switch (msg.type) {
      case "metrics":
        return [{
          name: "health_check_targets",
          help: "Instances the HealthActor checks (on the leading replica)",
          type: "gauge" as const,
          samples: [{ value: active && enabled ? targets.size : 0 }],
        }];
      case "ping":
        return { actor: "health", ok: true };
      case "status":
        return await monitor.check(ctx);
      case "probe":
        return monitor.last;
      case "track":
        for (const t of msg.targets) {
          targets.set(t.key, t);
          if (!scheduler.has(t.key)) scheduler.add(t.key);
        }
        return;
      case "untrack":
        for (const k of msg.keys) {
          targets.delete(k);
          last.delete(k);
          scheduler.remove(k);
        }
        return;
      case "set_active":
        if (msg.active === active) return;
        active = msg.active;
        if (active && enabled) scheduler.start();
        else if (!active) await scheduler.stop();
        return;
      case "check_now": {
        const known = msg.keys.filter((k) => targets.has(k));
        for (const k of known) manual.add(k);
        await Promise.all(known.map((k) => scheduler.runNow(k)));
        return known.map((k) => last.get(k)).filter((o): o is HealthOutcome => o !== undefined);
      }
      default: {
        const never: never = msg;
        throw new Error(`HealthActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    await scheduler?.stop();
  },
});
