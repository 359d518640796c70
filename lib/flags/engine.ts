/**
 * Local evaluation of Unleash flag definitions with the engine of `unleash-client` (its
 * strategies, constraint operators, segments, variants and dependencies), fed by our own
 * sync instead of the SDK's fetcher. Pure and synchronous: the FlagActor owns one
 * {@link FlagSet} per environment, and the client-specification suite runs against it.
 */
import clientModule from "unleash-client/lib/client.js";
import { defaultStrategies } from "unleash-client/lib/strategy/index.js";
import type { Context } from "unleash-client/lib/context.js";
import type { FeatureInterface } from "unleash-client/lib/feature.js";
import type { StrategyTransportInterface } from "unleash-client/lib/strategy/index.js";
import type { Constraint, Segment } from "unleash-client/lib/strategy/strategy.js";
import { resolveContextValue } from "unleash-client/lib/helpers.js";
import type { Strategy } from "unleash-client/lib/strategy/index.js";
import type { Payload } from "unleash-client/lib/variant.js";

export type { Context, FeatureInterface, Payload, Segment };

// The package is CommonJS with `exports.default`; Deno hands us the exports object.
type ClientClass = typeof import("unleash-client/lib/client.js").default;
const UnleashClient: ClientClass = (clientModule as unknown as { default?: ClientClass }).default ??
  (clientModule as unknown as ClientClass);

/** OpenFeature reasons a successful evaluation can carry. */
export type EvalReason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DEFAULT" | "DISABLED";

export interface Evaluation {
  /** False when the environment has no flag of that name. */
  found: boolean;
  /** Unleash's `isEnabled`. */
  enabled: boolean;
  /** Unleash's `getVariant`: `{name: "disabled", enabled: false}` when none applies. */
  variant: { name: string; enabled: boolean; payload?: Payload };
  reason: EvalReason;
}

/** A client-API document, or a delta-API one (`{events: [...]}`). */
export interface FlagDocument {
  version?: number;
  features?: unknown[];
  segments?: unknown[];
  events?: unknown[];
  query?: unknown;
}

/** Thrown for a document that is not Unleash client-API JSON; names the faulty part. */
export class FlagDocumentError extends Error {}

/** Strategies that only match for some contexts (targeting, not a dice roll). */
const TARGETING_STRATEGIES = new Set(["userWithId", "remoteAddress", "applicationHostname"]);

/** The `parameters` object of the strategy that last answered enabled, by identity. */
let lastMatch: unknown = null;

/**
 * The SDK's strategies, each wrapped to note which strategy definition matched. Every
 * strategy definition gets its own `parameters` object in {@link normalizeFeature}, so the
 * identity tells which one of a feature's strategies won.
 */
const strategies: Strategy[] = defaultStrategies.map((s) => {
  const wrapped = Object.create(s) as Strategy;
  wrapped.getResult = (parameters, context, constraints, variants) => {
    // Called on the wrapper, so that the strategy's constraint checks find ours below.
    const r = s.getResult.call(wrapped, parameters, context, constraints, variants);
    if (r.enabled) lastMatch = parameters;
    return r;
  };
  wrapped.checkConstraint = (constraint, context) => {
    const values = inValues(constraint);
    if (values === null) return s.checkConstraint.call(wrapped, constraint, context);
    const isIn = values.has(resolveContextValue(context, constraint.contextName) as string);
    const holds = constraint.operator === "IN" ? isIn : !isIn;
    return constraint.inverted ? !holds : holds;
  };
  return wrapped;
});

/** The cleaned values of each IN / NOT_IN constraint, by constraint (definitions are immutable). */
const inSets = new WeakMap<object, Set<string> | null>();

/**
 * An `IN`/`NOT_IN` constraint's values as the SDK's operator compares them (empty ones
 * dropped, the rest trimmed), as a set; null for any other constraint. The SDK cleans the
 * list at every evaluation: a 200-user list cost more than the rest of the flag (bench/).
 * A list that is not all strings stays with the SDK, which decides what it means.
 */
function inValues(c: Constraint): Set<string> | null {
  if (c.operator !== "IN" && c.operator !== "NOT_IN") return null;
  let set = inSets.get(c);
  if (set === undefined) {
    const values: unknown = c.values;
    set = Array.isArray(values) && values.every((v) => typeof v === "string")
      ? new Set(values.filter((v) => !!v).map((v) => v.trim()))
      : null;
    inSets.set(c, set);
  }
  return set;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function normalizeFeature(f: unknown, where: string): FeatureInterface {
  if (!isObject(f) || typeof f.name !== "string" || f.name === "") {
    throw new FlagDocumentError(`${where}: a feature needs a non-empty string "name"`);
  }
  if (f.strategies !== undefined && !Array.isArray(f.strategies)) {
    throw new FlagDocumentError(`${where} (${f.name}): "strategies" must be an array`);
  }
  if (f.variants !== undefined && f.variants !== null && !Array.isArray(f.variants)) {
    throw new FlagDocumentError(`${where} (${f.name}): "variants" must be an array`);
  }
  const strategiesOf = (f.strategies as unknown[] | undefined ?? []).map((s, i) => {
    if (!isObject(s) || typeof s.name !== "string") {
      throw new FlagDocumentError(`${where} (${f.name}): strategies[${i}] needs a "name"`);
    }
    return { ...s, parameters: { ...(isObject(s.parameters) ? s.parameters : {}) } };
  });
  return {
    ...f,
    enabled: f.enabled === true,
    strategies: strategiesOf as unknown as StrategyTransportInterface[],
  } as FeatureInterface;
}

function normalizeSegment(s: unknown, where: string): Segment {
  if (!isObject(s) || typeof s.id !== "number") {
    throw new FlagDocumentError(`${where}: a segment needs a numeric "id"`);
  }
  return { ...s, constraints: Array.isArray(s.constraints) ? s.constraints : [] } as Segment;
}

/** The flag definitions of one environment, and the engine that evaluates them. */
export class FlagSet {
  readonly features = new Map<string, FeatureInterface>();
  readonly segments = new Map<number, Segment>();
  readonly #client: InstanceType<ClientClass>;

  constructor() {
    const repository = {
      getToggle: (name: string) => this.features.get(name),
      getSegment: (id: number) => this.segments.get(id),
      getToggles: () => [...this.features.values()],
    };
    this.#client = new UnleashClient(repository as never, strategies);
    // The SDK warns through events; an unknown strategy simply does not match.
    this.#client.on("warn", () => {});
    this.#client.on("error", () => {});
  }

  /**
   * Builds a set from a client-API document (`{features, segments}`) or a delta-API one
   * (`{events}`: hydration, feature-updated/removed, segment-updated/removed).
   * @throws {FlagDocumentError} naming what is wrong.
   */
  static from(doc: unknown, where = "flags"): FlagSet {
    const set = new FlagSet();
    if (!isObject(doc)) throw new FlagDocumentError(`${where}: expected a JSON object`);
    if (Array.isArray(doc.events)) {
      for (const [i, e] of doc.events.entries()) set.#apply(e, `${where}.events[${i}]`);
      return set;
    }
    if (!Array.isArray(doc.features)) {
      throw new FlagDocumentError(`${where}: "features" must be an array`);
    }
    if (doc.segments !== undefined && !Array.isArray(doc.segments)) {
      throw new FlagDocumentError(`${where}: "segments" must be an array`);
    }
    for (const [i, f] of doc.features.entries()) {
      const n = normalizeFeature(f, `${where}.features[${i}]`);
      set.features.set(n.name, n);
    }
    for (const [i, s] of (doc.segments as unknown[] | undefined ?? []).entries()) {
      const n = normalizeSegment(s, `${where}.segments[${i}]`);
      set.segments.set(n.id, n);
    }
    return set;
  }

  #apply(e: unknown, where: string): void {
    if (!isObject(e)) throw new FlagDocumentError(`${where}: expected an event object`);
    switch (e.type) {
      case "hydration": {
        const fresh = FlagSet.from({ features: e.features ?? [], segments: e.segments }, where);
        this.features.clear();
        this.segments.clear();
        for (const [k, v] of fresh.features) this.features.set(k, v);
        for (const [k, v] of fresh.segments) this.segments.set(k, v);
        return;
      }
      case "feature-updated": {
        const n = normalizeFeature(e.feature, where);
        this.features.set(n.name, n);
        return;
      }
      case "feature-removed":
        this.features.delete(String(e.featureName));
        return;
      case "segment-updated": {
        const n = normalizeSegment(e.segment, where);
        this.segments.set(n.id, n);
        return;
      }
      case "segment-removed":
        this.segments.delete(Number(e.segmentId));
        return;
      default:
        throw new FlagDocumentError(`${where}: unknown event type ${JSON.stringify(e.type)}`);
    }
  }

  /** The client-API document of this set (what we cache and persist). */
  toDocument(): { version: 2; features: FeatureInterface[]; segments: Segment[] } {
    return {
      version: 2,
      features: [...this.features.values()],
      segments: [...this.segments.values()],
    };
  }

  /** Unleash's `isEnabled` (unknown flags are off). */
  isEnabled(name: string, context: Context): boolean {
    return this.#client.isEnabled(name, context, () => false);
  }

  /** Unleash's `getVariant`. */
  getVariant(name: string, context: Context) {
    return this.#client.getVariant(name, context);
  }

  /** Enabled state, variant and the OpenFeature reason, in one pass of the engine. */
  evaluate(name: string, context: Context): Evaluation {
    const feature = this.features.get(name);
    if (!feature) {
      return {
        found: false,
        enabled: false,
        variant: { name: "disabled", enabled: false },
        reason: "DEFAULT",
      };
    }
    lastMatch = null;
    const v = this.#client.getVariant(name, context);
    const enabled = v.feature_enabled === true;
    const variant = { name: v.name, enabled: v.enabled, payload: v.payload };
    if (!enabled) {
      return { found: true, enabled, variant, reason: feature.enabled ? "DEFAULT" : "DISABLED" };
    }
    return { found: true, enabled, variant, reason: reasonOf(feature, lastMatch) };
  }
}

function reasonOf(feature: FeatureInterface, matchedParams: unknown): EvalReason {
  const list = feature.strategies ?? [];
  if (list.length === 0) return splitByVariants(feature) ? "SPLIT" : "STATIC";
  const s = list.find((x) => x.parameters === matchedParams);
  if (!s) return "STATIC";
  if ((s.constraints?.length ?? 0) > 0 || (s.segments?.length ?? 0) > 0) return "TARGETING_MATCH";
  if (TARGETING_STRATEGIES.has(s.name)) return "TARGETING_MATCH";
  const p = (s.parameters ?? {}) as Record<string, unknown>;
  const pct = s.name === "flexibleRollout"
    ? Number(p.rollout ?? 100)
    : s.name.startsWith("gradualRollout")
    ? Number(p.percentage ?? 100)
    : 100;
  if (pct < 100) return "SPLIT";
  const strategyVariants = (s as { variants?: { weight?: number }[] }).variants ?? [];
  if (strategyVariants.filter((x) => (x.weight ?? 0) > 0).length > 1) return "SPLIT";
  if (strategyVariants.length === 0 && splitByVariants(feature)) return "SPLIT";
  return "STATIC";
}

function splitByVariants(feature: FeatureInterface): boolean {
  return (feature.variants ?? []).filter((x) => (x.weight ?? 0) > 0).length > 1;
}
