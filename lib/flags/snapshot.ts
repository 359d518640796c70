/**
 * The definition snapshots the FlagActor publishes to the HTTP thread, and the view the HTTP
 * thread evaluates over. Freshness is derived from the same fields by the same function on
 * both sides ({@link freshnessOf}), so an environment turns STALE on the HTTP thread by time
 * exactly when it would in the actor, without a message.
 */
import { FlagSet } from "./engine.ts";
import type { EnvView, Freshness } from "./provider.ts";
import type { FlagsView } from "./evaluate.ts";

/** How freshness is derived: the source's kind and the actor's staleness settings. */
export type FreshnessPolicy = {
  /** `file` definitions are always live; `unleash` ones age. */
  source: "unleash" | "file";
  /** How long definitions stay current without the source confirming them, ms. */
  stale_ms: number;
  /** `UNLEASH_AUTO_SYNC_ENABLED`: when false, definitions confirmed once stay live. */
  auto_sync: boolean;
};

/** When an environment's definitions were fetched and last confirmed. */
export type FreshnessFacts = {
  /** When the definitions were fetched from the source (ISO). */
  synced_at: string;
  /** When the source last confirmed them in the actor's process (epoch ms), or null. */
  confirmed_at: number | null;
};

/**
 * One environment in a snapshot. `doc` (the definitions document as JSON text) is present
 * when the definitions differ from the last ones published (by `hash`); without it only the
 * freshness facts changed.
 */
export type EnvSnapshot = FreshnessFacts & {
  environment: string;
  hash: string;
  doc?: string;
};

/** What the FlagActor publishes at start and at every change: the environments that changed. */
export type FlagSnapshot = FreshnessPolicy & { environments: EnvSnapshot[] };

/** `live`, `cached` or `stale` for definitions with `facts` under `policy`, at `now` (ms). */
export function freshnessOf(
  facts: FreshnessFacts,
  policy: FreshnessPolicy,
  now = Date.now(),
): Freshness {
  if (policy.source === "file") return "live";
  if (facts.confirmed_at !== null) {
    if (!policy.auto_sync || now - facts.confirmed_at <= policy.stale_ms) return "live";
    return "stale";
  }
  return now - Date.parse(facts.synced_at) <= policy.stale_ms ? "cached" : "stale";
}

interface Held {
  hash: string;
  set: FlagSet;
  facts: FreshnessFacts;
  /** The freshness that holds until `until` (ms), so most reads skip the derivation. */
  freshness: Freshness;
  until: number;
}

/** Where the environments are known before the first snapshot arrives. */
export interface SnapshotViewOptions {
  environments: readonly string[];
  defaultEnvironment: string;
  /** The source's kind as the settings name it, until a snapshot says. */
  sourceKind: "unleash" | "file";
}

/**
 * The latest snapshot of each environment, as a {@link FlagsView}: each definitions document
 * is parsed once, when it arrives.
 */
export class SnapshotView implements FlagsView {
  readonly environments: readonly string[];
  readonly defaultEnvironment: string;
  #policy: FreshnessPolicy;
  readonly #envs = new Map<string, Held>();

  constructor(opts: SnapshotViewOptions) {
    this.environments = opts.environments;
    this.defaultEnvironment = opts.defaultEnvironment;
    this.#policy = { source: opts.sourceKind, stale_ms: 0, auto_sync: true };
  }

  get sourceKind(): string {
    return this.#policy.source;
  }

  /** How many environments have definitions. */
  get size(): number {
    return this.#envs.size;
  }

  /**
   * Takes a snapshot in. An environment whose `doc` is absent keeps its definitions if their
   * hash matches, and is ignored otherwise (it cannot be evaluated without them).
   * @throws {Error} when a document cannot be parsed (nothing of that environment changes).
   */
  apply(s: FlagSnapshot): void {
    this.#policy = { source: s.source, stale_ms: s.stale_ms, auto_sync: s.auto_sync };
    const errors: string[] = [];
    for (const e of s.environments) {
      if (!this.environments.includes(e.environment)) continue;
      const facts = { synced_at: e.synced_at, confirmed_at: e.confirmed_at };
      const held = this.#envs.get(e.environment);
      let set: FlagSet;
      if (e.doc !== undefined) {
        try {
          set = FlagSet.from(JSON.parse(e.doc), `snapshot ${e.environment}`);
        } catch (err) {
          errors.push(`${e.environment}: ${(err as Error).message}`);
          continue;
        }
      } else if (held && held.hash === e.hash) set = held.set;
      else continue;
      this.#envs.set(e.environment, { hash: e.hash, set, facts, freshness: "live", until: 0 });
    }
    // The policy may have changed: every cached freshness is re-derived at its next read.
    for (const h of this.#envs.values()) h.until = 0;
    if (errors.length > 0) throw new Error(`Flag snapshot not applied: ${errors.join("; ")}`);
  }

  definitions(env: string): EnvView | undefined {
    const h = this.#envs.get(env);
    if (!h) return undefined;
    const now = Date.now();
    if (now >= h.until) {
      h.freshness = freshnessOf(h.facts, this.#policy, now);
      h.until = this.#holdsUntil(h, now);
    }
    return { set: h.set, freshness: h.freshness };
  }

  /** Until when (ms) the freshness derived at `now` cannot change: the next deadline. */
  #holdsUntil(h: Held, now: number): number {
    const p = this.#policy;
    if (p.source === "file" || h.freshness === "stale") return Infinity;
    if (h.facts.confirmed_at !== null) {
      return p.auto_sync ? h.facts.confirmed_at + p.stale_ms + 1 : Infinity;
    }
    return Math.max(now, Date.parse(h.facts.synced_at) + p.stale_ms + 1);
  }
}
