/**
 * What evaluation counts: answers by OpenFeature reason (for `/metrics`) and, for Unleash
 * client metrics, `yes`/`no` and variants per environment and flag since the last report.
 */
import type { Evaluation } from "./engine.ts";
import type { MetricsBucket } from "./sources.ts";

/** Usage counts per environment since `start` (ISO), taken at `stop` (ISO). */
export interface UsageReport {
  start: string;
  stop: string;
  toggles: Map<string, MetricsBucket["toggles"]>;
}

/** Counters fed by evaluation; the owner reads them for `/metrics` and the usage report. */
export class EvaluationCounts {
  readonly #usage: boolean;
  readonly #reasons = new Map<string, number>();
  #toggles = new Map<string, MetricsBucket["toggles"]>();
  #since = new Date().toISOString();

  /** @param opts.usage whether usage per flag is counted (an Unleash source that takes it) */
  constructor(opts: { usage: boolean }) {
    this.#usage = opts.usage;
  }

  /** Whether usage per flag is counted (and so reported). */
  get usageCounted(): boolean {
    return this.#usage;
  }

  /** Answers so far by reason (`STATIC`, `CACHED`, `ERROR`, …). */
  get reasons(): ReadonlyMap<string, number> {
    return this.#reasons;
  }

  /** Counts one answer with `reason`. */
  reason(reason: string): void {
    this.#reasons.set(reason, (this.#reasons.get(reason) ?? 0) + 1);
  }

  /** Counts one engine evaluation of `flag` in `env` (a no-op unless usage is counted). */
  usage(env: string, flag: string, e: Evaluation): void {
    if (!this.#usage) return;
    let toggles = this.#toggles.get(env);
    if (!toggles) this.#toggles.set(env, toggles = {});
    const t = toggles[flag] ??= { yes: 0, no: 0, variants: {} };
    if (e.enabled) t.yes++;
    else t.no++;
    if (e.variant.enabled) t.variants[e.variant.name] = (t.variants[e.variant.name] ?? 0) + 1;
  }

  /** The usage counted since the previous take (or construction), and starts a new period. */
  takeUsage(): UsageReport {
    const stop = new Date().toISOString();
    const out = { start: this.#since, stop, toggles: this.#toggles };
    this.#toggles = new Map();
    this.#since = stop;
    return out;
  }
}
