/**
 * FlagActor: keeps each environment's flag definitions (from Unleash or the flags file;
 * lib/flags/definitions.ts), persists them as last-known-good, caches them for other
 * replicas, publishes what changed, reports usage to Unleash, and publishes a snapshot of
 * the definitions and their freshness to the HTTP thread at start and at every change
 * (`flag_snapshot`), where requests are evaluated (lib/flags/evaluate.ts, lib/flags/snapshot.ts);
 * the HTTP thread hands back what it counted (`usage`). The actor can evaluate too, over the
 * same definitions.
 *
 * A poll with ETag runs every source interval; a change is stored with its events in one
 * transaction, then the outbox is relayed to the event sink. Every sync of an environment
 * runs in its mailbox queue ({@link flagsEntity}), so two syncs of one environment never
 * interleave; reads run at once.
 */
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { FlagCalls, HttpAnswer } from "./flags_protocol.ts";
import type { FlagBackends } from "./flags_backends.ts";
import type { Settings } from "../lib/settings.ts";
import type { BackendStatus } from "./protocol.ts";
import type { Collected } from "../lib/metrics.ts";
import { log } from "../lib/log.ts";
import { coalesce, settleWithin } from "../lib/async.ts";
import { BackendUnavailableError } from "../lib/errors.ts";
import { defaultFlagEnvironment, flagEnvironments } from "../lib/flags/api.ts";
import type { FlagSource } from "../lib/flags/sources.ts";
import type { FlagEvent, FlagStore } from "../lib/flags/store.ts";
import type { FlagCache } from "../lib/flags/cache.ts";
import type { FlagEventSink } from "../lib/flags/event_sink.ts";
import { FlagDefinitions, type SyncResult } from "../lib/flags/definitions.ts";
import { type CountsBatch, EvaluationCounts } from "../lib/flags/counts.ts";
import type { EnvSnapshot, FreshnessFacts } from "../lib/flags/snapshot.ts";
import { type EvaluateOp, FlagEvaluator, type OfrepRequest } from "../lib/flags/evaluate.ts";
import { clientDocument, ClientUsage, notModified } from "../lib/flags/client_api.ts";
import type { MetricsBucket } from "../lib/flags/sources.ts";

type Ctx = ActorContext<FlagCalls>;

/** The mailbox key of `env`'s definitions: its syncs run one at a time, in order. */
export function flagsEntity(env: string): string {
  return `flags:${env}`;
}

/** How long a stop waits for syncs under way to store what they fetched, ms. */
const STOP_DRAIN_MS = 3_000;
/** How long one fetch from the source (or one metrics upload) may take, ms. */
const FETCH_TIMEOUT_MS = 10_000;
/** The outbox relay's period while it succeeds, ms. */
const RELAY_IDLE_MS = 5_000;

/**
 * The actor's state and behaviour, one method per message. It owns the backends it is given
 * and closes them on {@link stop}; everything it schedules goes through `ctx`.
 */
export class FlagActor {
  readonly #s: Settings;
  readonly #source: FlagSource;
  readonly #store: FlagStore;
  readonly #cache: FlagCache;
  readonly #events: FlagEventSink;
  readonly #environments: string[];
  readonly #definitions: FlagDefinitions;
  /** The last sync error per environment: a failure is logged when it starts or changes. */
  readonly #syncErrors = new Map<string, string>();
  readonly #counts: EvaluationCounts;
  readonly #clientUsage: ClientUsage;
  readonly #evaluator: FlagEvaluator;
  readonly #monitor: BackendMonitor;
  /** Drains the outbox; a change stored during a drain joins the next one. */
  readonly #drain = coalesce(() => this.#drainAll());
  #relayDelay = 0;
  /** What the HTTP thread was last given per environment: its hash and freshness facts. */
  readonly #published = new Map<string, FreshnessFacts & { hash: string }>();

  constructor(settings: Settings, backends: FlagBackends) {
    this.#s = settings;
    this.#source = backends.source;
    this.#store = backends.store;
    this.#cache = backends.cache;
    this.#events = backends.events;
    this.#environments = flagEnvironments(settings);
    this.#definitions = new FlagDefinitions({
      ...backends,
      environments: this.#environments,
      fullSyncSeconds: settings.UNLEASH_SYNC_INTERVAL,
      staleMs: Math.max(
        settings.FEATURE_FLAG_CACHE_TTL * 1000,
        3 * this.#source.pollSeconds * 1000,
      ),
      autoSync: settings.UNLEASH_AUTO_SYNC_ENABLED,
      onEvents: () => {
        this.#drain().catch((err) =>
          log.warn("flag event relay failed", { error: (err as Error).message })
        );
      },
    });
    this.#counts = new EvaluationCounts({
      usage: this.#source.kind === "unleash" && !settings.UNLEASH_DISABLE_METRICS,
    });
    this.#clientUsage = new ClientUsage({ forward: this.#counts.usageCounted });
    this.#evaluator = new FlagEvaluator({
      environments: this.#environments,
      defaultEnvironment: defaultFlagEnvironment(settings),
      sourceKind: this.#source.kind,
      definitions: (env) => this.#definitions.view(env),
    }, { fallback: settings.FEATURE_FLAG_FALLBACK_ENABLED, counts: this.#counts });
    this.#monitor = new BackendMonitor([{
      ...this.#source.probe,
      describe: () => ({
        environments: Object.fromEntries(
          this.#environments.map((e) => [e, this.#definitions.view(e)?.freshness ?? "none"]),
        ),
      }),
    }]);
  }

  /**
   * Restores the last-known-good definitions, syncs once (unless Unleash's start-up sync is
   * off) and schedules the poll, the metrics report, the relay and the probes.
   * @throws when the store cannot be read.
   */
  async start(ctx: Ctx): Promise<void> {
    const s = this.#s;
    await this.#definitions.restore();
    // Published even when empty: the HTTP thread learns the source and staleness policy.
    this.#publish(ctx, true);
    const unleash = this.#source.kind === "unleash";
    if (!unleash || s.UNLEASH_AUTO_SYNC_ON_STARTUP) await this.poll(ctx, false);
    if (!unleash || s.UNLEASH_AUTO_SYNC_ENABLED) {
      ctx.after(unleash && s.UNLEASH_AUTO_SYNC_ON_STARTUP ? this.#source.pollSeconds * 1000 : 0, {
        type: "poll",
      });
    }
    if (this.#counts.usageCounted) {
      ctx.after(s.UNLEASH_METRICS_INTERVAL * 1000, { type: "report" });
    }
    ctx.after(0, { type: "relay" });
    this.#monitor.start(ctx);
  }

  /** The actor's metric families: answers by reason, flags known per environment. */
  metrics(): Collected[] {
    return [
      {
        name: "flag_evaluations_total",
        help: "Feature-flag evaluations by OpenFeature reason",
        type: "counter",
        samples: [...this.#counts.reasons].map(([reason, value]) => ({
          labels: { reason },
          value,
        })),
      },
      {
        name: "flag_definitions",
        help: "Flags known per environment",
        type: "gauge",
        samples: this.#definitions.summary().map((e) => ({
          labels: { environment: e.environment, freshness: e.freshness },
          value: e.flags,
        })),
      },
      ...this.#clientUsage.metrics(),
    ];
  }

  /** Probes the source now. */
  status(ctx: Ctx): Promise<BackendStatus[]> {
    return this.#monitor.check(ctx);
  }

  /** The periodic probe (self-message). */
  probe(ctx: Ctx): Promise<BackendStatus[]> {
    return this.#monitor.tick(ctx);
  }

  /** See {@link FlagEvaluator.evaluate}. */
  evaluate(op: EvaluateOp, body: string): string {
    return this.#evaluator.evaluate(op, body);
  }

  /** See {@link FlagEvaluator.ofrep}. */
  ofrep(req: OfrepRequest): Promise<HttpAnswer> {
    return this.#evaluator.ofrep(req);
  }

  /** See {@link FlagEvaluator.list}. */
  list(env: string): string {
    return this.#evaluator.list(env);
  }

  /** See {@link FlagEvaluator.get}. */
  get(env: string, name: string): string {
    return this.#evaluator.get(env, name);
  }

  /** Unleash Client API: `env`'s document and ETag, or 304 when `inm` names the ETag.
   * @throws {BackendUnavailableError} before `env` has definitions. */
  async clientFeatures(env: string, inm: string | null): Promise<HttpAnswer> {
    const view = this.#definitions.view(env);
    if (!view) throw new BackendUnavailableError("flags", `No flag definitions for ${env} yet`);
    const { body, etag } = await clientDocument(view.set);
    return notModified(inm, etag) ? { status: 304, body: "", etag } : { status: 200, body, etag };
  }

  /** Unleash Client API: an SDK's register (`toggles` null) or metrics report in `env`;
   * counts join the usage reported to Unleash. */
  clientUsage(env: string, instance: string, toggles: MetricsBucket["toggles"] | null): void {
    const known = this.#definitions.view(env)?.set.features ?? new Map();
    this.#clientUsage.record(env, instance, toggles, known);
  }

  /** Adds what the HTTP thread counted to the `metrics` counters and the usage report. */
  usage(counts: CountsBatch): void {
    this.#counts.add(counts);
  }

  /**
   * Fetches `env` in full now and applies what changed. Run it in `env`'s mailbox queue
   * ({@link flagsEntity}).
   * @returns JSON text of `{environment, flags_synced, timestamp}`.
   * @throws {BackendUnavailableError} when the source cannot be read.
   */
  async sync(env: string, ctx: Ctx): Promise<string> {
    let r: SyncResult;
    try {
      r = await this.#sync(env, true, ctx);
    } catch (err) {
      throw new BackendUnavailableError(
        "flags",
        `Flag sync of ${env} from ${this.#source.kind} failed: ${(err as Error).message}`,
      );
    }
    return JSON.stringify({
      environment: env,
      flags_synced: r.flags,
      timestamp: new Date(r.confirmedAt ?? Date.now()).toISOString(),
    });
  }

  /**
   * Syncs every environment, each in its mailbox queue; a failure is logged (once until it
   * changes) and evaluation goes on from the last definitions. With `reschedule`, the next
   * poll is scheduled when this one ends.
   */
  async poll(ctx: Ctx, reschedule = true): Promise<void> {
    try {
      await Promise.all(this.#environments.map(async (env) => {
        try {
          await ctx.exclusive(flagsEntity(env), () => this.#sync(env, false, ctx));
          if (this.#syncErrors.delete(env)) log.info("flag sync recovered", { environment: env });
        } catch (err) {
          if (ctx.signal.aborted) return;
          if (this.#syncErrors.get(env) === (err as Error).message) return;
          this.#syncErrors.set(env, (err as Error).message);
          log.warn("flag sync failed; evaluating from the last definitions", {
            environment: env,
            source: this.#source.kind,
            error: (err as Error).message,
          });
        }
      }));
    } finally {
      if (reschedule && !ctx.signal.aborted) {
        ctx.after(this.#source.pollSeconds * 1000, { type: "poll" });
      }
    }
  }

  /** The relay loop: drains every few seconds, backing off while the sink or store is away. */
  async relay(ctx: Ctx): Promise<void> {
    let next = RELAY_IDLE_MS;
    try {
      await this.#drain();
      this.#relayDelay = 0;
    } catch (err) {
      this.#relayDelay = Math.min(Math.max(this.#relayDelay * 2, 500), 30_000);
      next = this.#relayDelay;
      log.warn("flag event relay failed; retrying", {
        error: (err as Error).message,
        retry_in_ms: next,
      });
    } finally {
      if (!ctx.signal.aborted) ctx.after(next, { type: "relay" });
    }
  }

  /** Sends the usage counted since the last report to Unleash, then schedules the next. */
  async report(ctx: Ctx): Promise<void> {
    const { start, stop, toggles } = this.#counts.takeUsage();
    this.#clientUsage.drainInto(toggles);
    for (const [env, t] of toggles) {
      try {
        await this.#source.sendMetrics!(
          env,
          { start, stop, toggles: t },
          AbortSignal.timeout(FETCH_TIMEOUT_MS),
        );
      } catch (err) {
        log.warn("Unleash metrics not sent", { environment: env, error: (err as Error).message });
      }
    }
    if (!ctx.signal.aborted) {
      ctx.after(this.#s.UNLEASH_METRICS_INTERVAL * 1000, { type: "report" });
    }
  }

  /** Lets syncs under way store what they fetched, then closes the backends. */
  async stop(ctx: Ctx): Promise<void> {
    // A sync may be storing what it fetched (the store, then the cache): let it finish before
    // the connections close (its fetch, if still running, was aborted with the signal).
    const queues = this.#environments.map((env) => ctx.exclusive(flagsEntity(env), () => {}));
    await settleWithin(Promise.allSettled(queues), STOP_DRAIN_MS);
    await this.#events.close().catch(() => {});
    await this.#cache.close().catch(() => {});
    await this.#store.close().catch(() => {});
  }

  async #sync(env: string, force: boolean, ctx: Ctx): Promise<SyncResult> {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]);
    try {
      return await this.#definitions.sync(env, force, signal);
    } finally {
      // A failed sync may still have changed what is held (fetched, then not stored).
      this.#publish(ctx);
    }
  }

  /**
   * Emits `flag_snapshot` with each environment whose definitions or freshness facts differ
   * from what was last published (its document only when the definitions differ); nothing
   * when none does, unless `always`.
   */
  #publish(ctx: Ctx, always = false): void {
    const changed: EnvSnapshot[] = [];
    for (const env of this.#environments) {
      const last = this.#published.get(env);
      const now = this.#definitions.publication(env, false);
      if (!now) continue;
      if (
        last?.hash === now.hash && last.synced_at === now.synced_at &&
        last.confirmed_at === now.confirmed_at
      ) continue;
      const withDoc = last?.hash === now.hash ? now : this.#definitions.publication(env, true)!;
      this.#published.set(env, {
        hash: now.hash,
        synced_at: now.synced_at,
        confirmed_at: now.confirmed_at,
      });
      changed.push(withDoc);
    }
    if (changed.length === 0 && !always) return;
    ctx.emit({ type: "flag_snapshot", ...this.#definitions.policy, environments: changed });
  }

  async #drainAll(): Promise<void> {
    const send = (rows: { event: FlagEvent }[]) => this.#events.send(rows.map((r) => r.event));
    while (await this.#store.drain(200, send) > 0) { /* until empty */ }
  }
}
