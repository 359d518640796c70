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

/**
 * What one thread counted and hands to another ({@link EvaluationCounts.take},
 * {@link EvaluationCounts.add}): answers by reason, and usage per environment and flag. A
 * type, not an interface: it is an actor message's payload.
 */
export type CountsBatch = {
  reasons: Record<string, number>;
  toggles: Record<string, MetricsBucket["toggles"]>;
};

/** Counters fed by evaluation; the owner reads them for `/metrics` and the usage report. */
export class EvaluationCounts {
  readonly #usage: boolean;
  readonly #onCounted: (() => void) | undefined;
  #reasons = new Map<string, number>();
  #toggles = new Map<string, MetricsBucket["toggles"]>();
  #since = new Date().toISOString();
  /** Whether anything was counted since the last {@link take} (or construction). */
  #pending = false;

  /**
   * @param opts.usage whether usage per flag is counted (an Unleash source that takes it)
   * @param opts.onCounted called at the first count after construction or a {@link take}
   */
  constructor(opts: { usage: boolean; onCounted?: () => void }) {
    this.#usage = opts.usage;
    this.#onCounted = opts.onCounted;
  }

  /** Whether anything was counted since the last {@link take}. */
  get pending(): boolean {
    return this.#pending;
  }

  /** Everything counted since the last take (or construction), and starts from zero; null when nothing was. */
  take(): CountsBatch | null {
    if (!this.#pending) return null;
    this.#pending = false;
    const out = {
      reasons: Object.fromEntries(this.#reasons),
      toggles: Object.fromEntries(this.#toggles),
    };
    this.#reasons = new Map();
    this.#toggles = new Map();
    return out;
  }

  /** Adds what another thread counted (its usage dropped unless usage is counted here). */
  add(b: CountsBatch): void {
    for (const [reason, n] of Object.entries(b.reasons)) {
      this.#reasons.set(reason, (this.#reasons.get(reason) ?? 0) + n);
    }
    if (!this.#usage) return;
    for (const [env, flags] of Object.entries(b.toggles)) {
      let toggles = this.#toggles.get(env);
      if (!toggles) this.#toggles.set(env, toggles = {});
      for (const [flag, c] of Object.entries(flags)) {
        const t = toggles[flag] ??= { yes: 0, no: 0, variants: {} };
        t.yes += c.yes;
        t.no += c.no;
        for (const [v, n] of Object.entries(c.variants)) t.variants[v] = (t.variants[v] ?? 0) + n;
      }
    }
  }

  #counted(): void {
    if (this.#pending) return;
    this.#pending = true;
    this.#onCounted?.();
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
    this.#counted();
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
    this.#counted();
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
