/**
 * Main-thread client of the FlagActor: one typed method per message, and the evaluation
 * the HTTP thread answers itself ({@link FlagClient.evaluator}) over the snapshots the actor
 * publishes (`flag_snapshot`). What that evaluation counts is handed to the actor at most
 * once a second (`usage`). While a crashed worker restarts, evaluation goes on from the last
 * snapshot; the new worker publishes every environment again once it has restored them.
 */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { FlagCalls, FlagsEvent } from "./flags_protocol.ts";
import { log } from "../lib/log.ts";
import { defaultFlagEnvironment, flagEnvironments } from "../lib/flags/api.ts";
import { EvaluationCounts } from "../lib/flags/counts.ts";
import { FlagEvaluator } from "../lib/flags/evaluate.ts";
import { SnapshotView } from "../lib/flags/snapshot.ts";

type Req<K extends keyof FlagCalls> = FlagCalls[K]["req"];

/** How long counts wait on the HTTP thread before they are handed to the actor, ms. */
export const USAGE_HANDOFF_MS = 1_000;

export class FlagClient extends ActorClient<FlagCalls, FlagsEvent> {
  /**
   * Evaluation on this thread over the latest snapshot of each environment: `evaluate`,
   * `ofrep`, `list` and `get` without an actor call, with the actor's answers and errors.
   */
  readonly evaluator: FlagEvaluator;
  readonly #view: SnapshotView;
  readonly #counts: EvaluationCounts;
  #usageTimer: ReturnType<typeof setTimeout> | undefined;

  /** `opts.url`: the worker module, default actors/flags_worker.ts (tests wrap it). */
  constructor(opts: Omit<ActorClientOptions<FlagsEvent>, "name" | "url"> & { url?: URL }) {
    const s = opts.settings;
    const view = new SnapshotView({
      environments: flagEnvironments(s),
      defaultEnvironment: defaultFlagEnvironment(s),
      sourceKind: s.UNLEASH_URL ? "unleash" : "file",
    });
    super({
      ...opts,
      name: "flags",
      url: opts.url ?? new URL("./flags_worker.ts", import.meta.url),
      credentials: ["REDIS_PASSWORD", "DATABASE_URL", "UNLEASH_API_TOKEN", "UNLEASH_CLIENT_TOKENS"],
      onEvent: (e) => {
        if (e.type === "flag_snapshot") {
          try {
            view.apply(e);
          } catch (err) {
            log.warn("flag snapshot not applied", { error: (err as Error).message });
          }
        }
        opts.onEvent?.(e);
      },
    });
    this.#view = view;
    this.#counts = new EvaluationCounts({
      usage: !!s.UNLEASH_URL && !s.UNLEASH_DISABLE_METRICS,
      onCounted: () => {
        if (this.#usageTimer === undefined && !this.stopping) {
          this.#usageTimer = setTimeout(() => {
            this.#usageTimer = undefined;
            this.flushUsage();
          }, USAGE_HANDOFF_MS);
        }
      },
    });
    this.evaluator = new FlagEvaluator(view, {
      fallback: s.FEATURE_FLAG_FALLBACK_ENABLED,
      counts: this.#counts,
    });
  }

  /** How many environments this thread holds definitions for (0 before the first snapshot). */
  get environmentsHeld(): number {
    return this.#view.size;
  }

  /**
   * Hands what this thread counted to the actor now instead of at the next handoff (a
   * `/metrics` scrape does, so that it reads every answer given before it). Never throws.
   */
  flushUsage(): void {
    if (this.#usageTimer !== undefined) clearTimeout(this.#usageTimer);
    this.#usageTimer = undefined;
    const counts = this.#counts.take();
    if (counts === null || this.stopping) return;
    // Counts posted to a worker that crashes are lost with the counters it held.
    this.call({ type: "usage", counts }).catch(() => {});
  }

  /** Hands the last counts to the actor, then stops it (see {@link ActorClient.stop}). */
  override stop(deadlineMs?: number): Promise<void> {
    if (!this.stopping) this.flushUsage();
    return super.stop(deadlineMs);
  }

  status() {
    return this.call({ type: "status" });
  }
  clientFeatures(r: Req<"clientFeatures">) {
    return this.call({ type: "clientFeatures", ...r });
  }
  clientUsage(r: Req<"clientUsage">) {
    return this.call({ type: "clientUsage", ...r });
  }
  sync(r: Req<"sync">) {
    return this.call({ type: "sync", ...r });
  }
}
