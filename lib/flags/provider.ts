/**
 * Our OpenFeature provider over the local engine, and the typed evaluation the HTTP API
 * answers with. Boolean flags answer their enabled state; string, number and object flags
 * answer the payload of the selected variant (`string`/`csv`, `number`, `json`).
 */
import {
  type EvaluationContext,
  FlagNotFoundError,
  type JsonValue,
  OpenFeature,
  OpenFeatureError,
  type Provider,
  ProviderNotReadyError,
  type ResolutionDetails,
  TypeMismatchError,
} from "@openfeature/server-sdk";
import type { Client } from "@openfeature/server-sdk";
import type { Context, Evaluation, FeatureInterface, FlagSet } from "./engine.ts";

export type FlagType = "boolean" | "string" | "number" | "integer" | "float" | "object";

/** How current an environment's definitions are. */
export type Freshness = "live" | "cached" | "stale";

/** What the provider needs of an environment. */
export interface EnvView {
  set: FlagSet;
  freshness: Freshness;
}

/** One answer of the HTTP API (`error_code` only with reason `ERROR`). */
export interface Resolution {
  value: unknown;
  reason: string;
  variant?: string;
  error_code?: string;
}

/** Context fields Unleash knows by name; everything else goes to `properties`. */
const UNLEASH_FIELDS = new Set(["userId", "sessionId", "remoteAddress", "environment", "appName"]);

/** OpenFeature context → Unleash context (`targetingKey` is the user id unless one is given). */
export function unleashContext(ctx: EvaluationContext, environment: string): Context {
  const out: Context = { environment };
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx)) {
    if (v === null || v === undefined) continue;
    if (k === "targetingKey") continue;
    if (k === "currentTime") {
      const d = v instanceof Date ? v : new Date(String(v));
      if (!Number.isNaN(d.getTime())) out.currentTime = d;
      continue;
    }
    const s = v instanceof Date
      ? v.toISOString()
      : typeof v === "object"
      ? JSON.stringify(v)
      : String(v);
    if (UNLEASH_FIELDS.has(k)) {
      if (k !== "environment") out[k] = s;
    } else properties[k] = s;
  }
  if (out.userId === undefined && typeof ctx.targetingKey === "string") {
    out.userId = ctx.targetingKey;
  }
  if (Object.keys(properties).length > 0) out.properties = properties;
  return out;
}

/** The value a variant payload gives for `type`, or a TypeMismatchError. */
function fromPayload(e: Evaluation, type: FlagType, flag: string): unknown {
  const p = e.variant.payload!;
  const want = type === "integer" || type === "float" ? "number" : type;
  if (want === "string") {
    if (p.type === "string" || p.type === "csv") return String(p.value);
  } else if (want === "number") {
    if (p.type === "number") {
      const n = Number(p.value);
      if (Number.isFinite(n) && (type !== "integer" || Number.isInteger(n))) return n;
    }
  } else if (want === "object" && p.type === "json") {
    try {
      return JSON.parse(String(p.value));
    } catch {
      throw new TypeMismatchError(`variant ${e.variant.name} of ${flag} has invalid JSON`);
    }
  }
  throw new TypeMismatchError(
    `${flag} answers a ${p.type} payload (variant ${e.variant.name}), not ${type}`,
  );
}

/** Whether any variant of `f` (its own, or a strategy's) carries a payload. */
function carriesPayloads(f: FeatureInterface): boolean {
  const has = (vs: unknown) =>
    Array.isArray(vs) &&
    vs.some((v) => typeof v === "object" && v !== null && "payload" in v && v.payload);
  return has(f.variants) ||
    (f.strategies ?? []).some((s) => has((s as { variants?: unknown }).variants));
}

/** Why a typed flag answered its default: the flag is off, or no variant with a payload. */
function defaultReason(e: Evaluation): string {
  return e.enabled ? "DEFAULT" : e.reason;
}

/** The provider. `lookup` gives the environment's definitions (the FlagActor's state). */
export class LocalUnleashProvider implements Provider {
  readonly metadata = { name: "config-service-unleash" } as const;
  readonly runsOn = "server" as const;
  readonly #lookup: (env: string) => EnvView | undefined;
  readonly #fallback: boolean;
  readonly #defaultEnv: string;
  /** Counts evaluations for Unleash client metrics (`yes`/`no`, variants). */
  onEvaluated?: (env: string, flag: string, e: Evaluation) => void;

  constructor(lookup: (env: string) => EnvView | undefined, opts: {
    fallback: boolean;
    defaultEnvironment: string;
  }) {
    this.#lookup = lookup;
    this.#fallback = opts.fallback;
    this.#defaultEnv = opts.defaultEnvironment;
  }

  /** Runs the engine; throws the OpenFeature errors the SDK turns into `ERROR` answers. */
  run(flag: string, ctx: EvaluationContext): { e: Evaluation; view: EnvView; env: string } {
    const env = typeof ctx.environment === "string" ? ctx.environment : this.#defaultEnv;
    const view = this.#lookup(env);
    if (!view) throw new ProviderNotReadyError(`no flag definitions for ${env} yet`);
    if (view.freshness !== "live" && !this.#fallback) {
      throw new ProviderNotReadyError(
        `flag source unreachable and FEATURE_FLAG_FALLBACK_ENABLED=false (${view.freshness})`,
      );
    }
    const e = view.set.evaluate(flag, this.#unleashContext(ctx, env));
    if (!e.found) throw new FlagNotFoundError(`no flag ${flag} in ${env}`);
    this.onEvaluated?.(env, flag, e);
    return { e, view, env };
  }

  /**
   * {@link unleashContext}, once for a run of evaluations over the same context object (a
   * bulk request's flags): the engine only reads it. Contexts are built per request and not
   * changed after, so the object's identity stands for its content.
   */
  #unleashContext(ctx: EvaluationContext, env: string): Context {
    if (ctx !== this.#lastCtx || env !== this.#lastEnv) {
      this.#lastCtx = ctx;
      this.#lastEnv = env;
      this.#last = unleashContext(ctx, env);
    }
    return this.#last!;
  }
  #lastCtx: EvaluationContext | null = null;
  #lastEnv = "";
  #last: Context | null = null;

  #reason(view: EnvView, reason: string): string {
    return view.freshness === "cached" ? "CACHED" : view.freshness === "stale" ? "STALE" : reason;
  }

  /**
   * One resolution as the OpenFeature resolve methods give it, synchronously.
   * @throws the OpenFeature errors of {@link run}, and TypeMismatchError.
   */
  resolve(
    flag: string,
    type: FlagType,
    def: unknown,
    ctx: EvaluationContext,
  ): ResolutionDetails<unknown> {
    const { e, view } = this.run(flag, ctx);
    if (type === "boolean") {
      return {
        value: e.enabled,
        variant: e.variant.enabled ? e.variant.name : e.enabled ? "enabled" : "disabled",
        reason: this.#reason(view, e.reason),
      };
    }
    if (!e.enabled || !e.variant.enabled || !e.variant.payload) {
      return { value: def, variant: e.variant.name, reason: this.#reason(view, defaultReason(e)) };
    }
    return {
      value: fromPayload(e, type, flag),
      variant: e.variant.name,
      reason: this.#reason(view, e.reason),
    };
  }

  resolveBooleanEvaluation(flag: string, def: boolean, ctx: EvaluationContext) {
    return Promise.resolve(this.resolve(flag, "boolean", def, ctx) as ResolutionDetails<boolean>);
  }
  resolveStringEvaluation(flag: string, def: string, ctx: EvaluationContext) {
    return Promise.resolve(this.resolve(flag, "string", def, ctx) as ResolutionDetails<string>);
  }
  resolveNumberEvaluation(flag: string, def: number, ctx: EvaluationContext) {
    return Promise.resolve(this.resolve(flag, "number", def, ctx) as ResolutionDetails<number>);
  }
  resolveObjectEvaluation<T extends JsonValue>(flag: string, def: T, ctx: EvaluationContext) {
    return Promise.resolve(this.resolve(flag, "object", def, ctx) as ResolutionDetails<T>);
  }

  /**
   * OFREP carries no type: a selected variant with a payload answers the payload (typed by
   * its own type). A flag whose variants carry payloads (a string, number or object flag)
   * answers no value when none is selected — disabled, or no strategy matched — so that the
   * OFREP provider gives the application its own default, as our typed evaluate does; any
   * other flag answers its enabled state.
   * @throws the OpenFeature errors of {@link run}.
   */
  untyped(flag: string, ctx: EvaluationContext): Resolution {
    const { e, view, env } = this.run(flag, ctx);
    const p = e.variant.enabled ? e.variant.payload : undefined;
    if (e.enabled && p) {
      const type: FlagType = p.type === "number"
        ? "number"
        : p.type === "json"
        ? "object"
        : "string";
      return {
        value: fromPayload(e, type, flag),
        variant: e.variant.name,
        reason: this.#reason(view, e.reason),
      };
    }
    const feature = this.#lookup(env)?.set.features.get(flag);
    if (feature && carriesPayloads(feature)) {
      return {
        value: undefined,
        variant: e.variant.name,
        reason: this.#reason(view, defaultReason(e)),
      };
    }
    return {
      value: e.enabled,
      variant: e.variant.enabled ? e.variant.name : e.enabled ? "enabled" : "disabled",
      reason: this.#reason(view, e.reason),
    };
  }
}

/** The OpenFeature client of this worker, bound to `provider`. */
export async function openFeatureClient(provider: LocalUnleashProvider): Promise<Client> {
  await OpenFeature.setProviderAndWait("config-service", provider);
  return OpenFeature.getClient("config-service");
}

/**
 * The provider's resolution mapped to our answer as the OpenFeature SDK maps it (an error
 * answers the default with reason ERROR and its code), without the SDK client's
 * per-evaluation machinery: that cost ~9 µs a flag against ~2 µs for the engine (bench/).
 * `evaluateTyped` is the same through the SDK; tests/flags_provider_test.ts holds them equal.
 */
export function evaluateDirect(
  provider: LocalUnleashProvider,
  flag: string,
  type: FlagType,
  def: unknown,
  ctx: EvaluationContext,
): Resolution {
  let d: ResolutionDetails<unknown>;
  try {
    d = provider.resolve(flag, type === "integer" || type === "float" ? "number" : type, def, ctx);
  } catch (err) {
    if (err instanceof OpenFeatureError) {
      return { value: def, reason: "ERROR", error_code: err.code };
    }
    return { value: def, reason: "ERROR", error_code: "GENERAL" };
  }
  if (type === "integer" && !Number.isInteger(d.value)) {
    return { value: def, reason: "ERROR", error_code: "TYPE_MISMATCH" };
  }
  const out: Resolution = { value: d.value, reason: d.reason ?? "UNKNOWN" };
  if (d.variant !== undefined) out.variant = d.variant;
  return out;
}

/** Evaluates through the OpenFeature SDK and maps its details to our answer. */
export async function evaluateTyped(
  client: Client,
  flag: string,
  type: FlagType,
  def: unknown,
  ctx: EvaluationContext,
): Promise<Resolution> {
  const d = type === "boolean"
    ? await client.getBooleanDetails(flag, def as boolean, ctx)
    : type === "string"
    ? await client.getStringDetails(flag, def as string, ctx)
    : type === "object"
    ? await client.getObjectDetails(flag, def as JsonValue, ctx)
    : await client.getNumberDetails(flag, def as number, ctx);
  let value: unknown = d.value;
  let reason = d.reason ?? "UNKNOWN";
  let errorCode = d.errorCode as string | undefined;
  if (type === "integer" && d.errorCode === undefined && !Number.isInteger(value)) {
    // The SDK has one number type; integer is ours.
    value = def;
    reason = "ERROR";
    errorCode = "TYPE_MISMATCH";
  }
  const out: Resolution = { value, reason };
  if (d.variant !== undefined && errorCode === undefined) out.variant = d.variant;
  if (errorCode !== undefined) out.error_code = errorCode;
  return out;
}
