/**
 * Flag evaluation over a read-only view of the environments' definitions and freshness: the
 * evaluation endpoints (`evaluate`, `boolean`, `bulk`), OFREP, and the definitions listing.
 * Input is the view and the request text; output is the answer. Nothing here knows of actors
 * or workers, so it runs wherever the definitions are.
 */
import type { EvaluationContext } from "@openfeature/server-sdk";
import { ErrorCode, OpenFeatureError } from "@openfeature/server-sdk";
import { BackendUnavailableError, NotFoundError, ValidationError } from "../errors.ts";
import type { FieldError } from "../errors.ts";
import { deepFields } from "../json.ts";
import type { Context, FeatureInterface, FlagSet } from "./engine.ts";
import { frontendAnswer } from "./frontend.ts";
import { type EnvView, evaluateDirect, LocalUnleashProvider, type Resolution } from "./provider.ts";
import {
  bodyErrors,
  BooleanBody,
  BulkBody,
  checkJsonDepth,
  EvaluateBody,
  OfrepBody,
  parseJsonText,
  typeAndDefault,
} from "./api.ts";
import { type EvaluateData, quickBulkBody, quickEvaluateBody } from "./quick_body.ts";
import type { z } from "@hono/zod-openapi";
import { EvaluationCounts } from "./counts.ts";
import { sha256Hex } from "./digest.ts";

/** What evaluation reads: the environments and, per environment, its definitions. */
export interface FlagsView {
  /** The environments flags are kept for; any other is refused. */
  readonly environments: readonly string[];
  /** Where a request without an environment goes. */
  readonly defaultEnvironment: string;
  /** The source's kind (`unleash`, `file`), named when an environment has no definitions. */
  readonly sourceKind: string;
  /** The definitions of `env` and how current they are; undefined before the first. */
  definitions(env: string): EnvView | undefined;
}

/** A ready HTTP answer: the status and the JSON text of the body. */
export interface HttpAnswer {
  status: number;
  body: string;
  etag?: string;
}

/**
 * One OFREP request: one flag (`key`) or all (`key` null). A type, not an interface: it is
 * an actor message's payload, which must be assignable to a record.
 */
export type OfrepRequest = {
  key: string | null;
  /** The environment the request names (its header), or null for the default. */
  env: string | null;
  /** The raw request body (JSON text, may be empty). */
  body: string;
  /** The request's `If-None-Match`, or null. */
  inm: string | null;
};

/** The evaluation endpoints' operations. */
export type EvaluateOp = "evaluate" | "boolean" | "bulk";

export interface FlagEvaluatorOptions {
  /** `FEATURE_FLAG_FALLBACK_ENABLED`: answer from cached or stale definitions. */
  fallback: boolean;
  /** Where answers are counted; default: counters nobody reads. */
  counts?: EvaluationCounts;
}

/** Answers evaluation requests from a {@link FlagsView}. */
export class FlagEvaluator {
  readonly #view: FlagsView;
  readonly #provider: LocalUnleashProvider;
  readonly #counts: EvaluationCounts;
  readonly #fallback: boolean;

  constructor(view: FlagsView, opts: FlagEvaluatorOptions) {
    this.#view = view;
    this.#fallback = opts.fallback;
    this.#counts = opts.counts ?? new EvaluationCounts({ usage: false });
    this.#provider = new LocalUnleashProvider((env) => view.definitions(env), {
      fallback: opts.fallback,
      defaultEnvironment: view.defaultEnvironment,
    });
    const counts = this.#counts;
    this.#provider.onEvaluated = (env, flag, e) => counts.usage(env, flag, e);
  }

  /**
   * One of the evaluation endpoints, from the raw request body; `environment` is where a
   * body that names none is evaluated (a bound token's), else the default environment.
   * @returns the JSON text of the response.
   * @throws {ValidationError} for a body that is not valid JSON, does not match the
   *   endpoint's schema, names an unknown environment or has a default of the wrong type.
   */
  evaluate(op: EvaluateOp, text: string, environment?: string): string {
    const raw = parseJsonText(text);
    const errors: FieldError[] = [];
    if (op === "bulk") {
      const data = quickBulkBody(raw) ?? viaZod(BulkBody, raw);
      const env = this.#envOf(data.environment ?? environment, errors);
      const items = data.flags.map((f, i) => {
        const td = typeAndDefault(f.type, f.default_value, `flags.${i}.default_value`);
        if ("field" in td) errors.push(td);
        return { name: f.flag_name, td };
      });
      if (errors.length > 0) throw new ValidationError(errors);
      const ctx = ofContext(data.user_id, data.context, env);
      const out: Record<string, Omit<Resolution, "variant">> = {};
      for (const { name, td } of items) {
        if ("field" in td) continue;
        const r = evaluateDirect(this.#provider, name, td.type, td.def, ctx);
        this.#counts.reason(r.reason);
        out[name] = r.error_code === undefined
          ? { value: r.value, reason: r.reason }
          : { value: r.value, reason: r.reason, error_code: r.error_code };
      }
      return JSON.stringify(out);
    }
    const body: EvaluateData = quickEvaluateBody(raw, op) ??
      (op === "boolean" ? viaZod(BooleanBody, raw) : viaZod(EvaluateBody, raw));
    const env = this.#envOf(body.environment ?? environment, errors);
    const td = typeAndDefault(
      op === "boolean" ? "boolean" : body.type,
      body.default_value,
      "default_value",
    );
    if ("field" in td) errors.push(td);
    if (errors.length > 0 || "field" in td) throw new ValidationError(errors);
    const r = evaluateDirect(
      this.#provider,
      body.flag_name,
      td.type,
      td.def,
      ofContext(body.user_id, body.context, env),
    );
    const out: Record<string, unknown> = {
      flag_name: body.flag_name,
      value: r.value,
      reason: r.reason,
    };
    if (op === "evaluate" && r.variant !== undefined) out.variant = r.variant;
    out.environment = env;
    if (r.error_code !== undefined) out.error_code = r.error_code;
    this.#counts.reason(r.reason);
    return JSON.stringify(out);
  }

  /**
   * OFREP: one flag, or all flags of the environment with an ETag (304 when `inm` names it).
   * Never throws for bad input: OFREP's own error shape answers it (400, 404).
   */
  async ofrep(m: OfrepRequest): Promise<HttpAnswer> {
    const bad = (details: string, code = "INVALID_CONTEXT"): HttpAnswer => ({
      status: 400,
      body: JSON.stringify(
        m.key === null
          ? { errorCode: code, errorDetails: details }
          : { key: m.key, errorCode: code, errorDetails: details },
      ),
    });
    let raw: unknown = {};
    if (m.body.trim() !== "") {
      try {
        raw = JSON.parse(m.body);
      } catch {
        return bad("the body is not valid JSON", "PARSE_ERROR");
      }
    }
    // MAX_JSON_DEPTH holds per field (a context of 128 levels passes), in OFREP's error shape.
    const deep = deepFields(raw);
    if (deep.length > 0) return bad(deep.map((e) => `${e.field} ${e.message}`).join("; "));
    const b = OfrepBody.safeParse(raw);
    if (!b.success) {
      return bad(bodyErrors(b.error).map((e) => `${e.field} ${e.message}`).join("; "));
    }
    const env = m.env ?? this.#view.defaultEnvironment;
    if (!this.#view.environments.includes(env)) return bad(`unknown environment ${env}`);
    const ctx: EvaluationContext = {
      ...(b.data.context as EvaluationContext ?? {}),
      environment: env,
    };
    if (m.key !== null) {
      const r = this.#ofrepOne(m.key, ctx);
      return { status: r.status, body: JSON.stringify(r.body) };
    }
    const v = this.#view.definitions(env);
    const flags = v ? [...v.set.features.keys()].map((k) => this.#ofrepOne(k, ctx).body) : [];
    const body = JSON.stringify({ flags });
    const etag = `"${(await sha256Hex(body)).slice(0, 32)}"`;
    if (m.inm !== null && m.inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
      return { status: 304, body: "", etag };
    }
    return { status: 200, body, etag };
  }

  /**
   * Unleash's Frontend API answer (lib/flags/frontend.ts): every flag of `env` enabled for
   * `ctx`, with its variant, as JSON text with a weak ETag. Uncounted: the SDK reports what
   * it used through `/api/frontend/client/metrics`.
   * @throws {BackendUnavailableError} when `env` has no definitions yet, or only cached or
   *   stale ones and FEATURE_FLAG_FALLBACK_ENABLED is false.
   */
  frontend(env: string, ctx: Context): Promise<{ body: string; etag: string }> {
    const v = this.#view.definitions(env);
    if (v && v.freshness !== "live" && !this.#fallback) {
      throw new BackendUnavailableError(
        "flags",
        `The ${this.#view.sourceKind} source is unreachable and FEATURE_FLAG_FALLBACK_ENABLED=false`,
      );
    }
    return frontendAnswer(this.#definitions(env), ctx);
  }

  /**
   * JSON text of `[{name, enabled, type?, description?, stale?}]`, the flags of `env`.
   * @throws {BackendUnavailableError} when `env` has no definitions yet.
   */
  list(env: string): string {
    return JSON.stringify([...this.#definitions(env).features.values()].map(summary));
  }

  /**
   * JSON text of one flag's definition (segments resolved).
   * @throws {NotFoundError} when `env` has no flag `name`.
   * @throws {BackendUnavailableError} when `env` has no definitions yet.
   */
  get(env: string, name: string): string {
    const set = this.#definitions(env);
    const f = set.features.get(name);
    if (!f) throw new NotFoundError(`Feature flag ${name} not found in ${env}`);
    return JSON.stringify(details(f, set));
  }

  /** An OFREP answer (success or `{key, errorCode, errorDetails}`). */
  #ofrepOne(
    key: string,
    ctx: EvaluationContext,
  ): { status: number; body: Record<string, unknown> } {
    try {
      const r = this.#provider.untyped(key, ctx);
      this.#counts.reason(r.reason);
      return {
        status: 200,
        body: { key, value: r.value, reason: r.reason, variant: r.variant, metadata: {} },
      };
    } catch (err) {
      if (err instanceof OpenFeatureError) {
        this.#counts.reason("ERROR");
        const notFound = err.code === ErrorCode.FLAG_NOT_FOUND;
        return {
          status: notFound ? 404 : 400,
          body: {
            key,
            // OFREP has no TYPE_MISMATCH or PROVIDER_NOT_READY: the rest is GENERAL.
            errorCode: notFound ? "FLAG_NOT_FOUND" : "GENERAL",
            errorDetails: err.message,
          },
        };
      }
      throw err;
    }
  }

  #envOf(requested: string | undefined, errors: FieldError[], field = "environment"): string {
    if (requested === undefined) return this.#view.defaultEnvironment;
    if (!this.#view.environments.includes(requested)) {
      errors.push({
        field,
        in: "body",
        message: `must be one of ${this.#view.environments.join(", ")}`,
      });
    }
    return requested;
  }

  #definitions(env: string): FlagSet {
    const v = this.#view.definitions(env);
    if (!v) {
      throw new BackendUnavailableError(
        "flags",
        `No flag definitions for ${env} yet: the ${this.#view.sourceKind} source has not answered`,
      );
    }
    return v.set;
  }
}

/**
 * What `schema` makes of a body the quick check left to it (the whole body's depth checked
 * first), or the ValidationError naming each field that is wrong.
 */
function viaZod<T>(schema: z.ZodType<T>, raw: unknown): T {
  const b = schema.safeParse(checkJsonDepth(raw));
  if (!b.success) throw new ValidationError(bodyErrors(b.error));
  return b.data;
}

function ofContext(
  userId: string | undefined,
  context: Record<string, unknown> | undefined,
  env: string,
): EvaluationContext {
  const ctx: EvaluationContext = { ...(context as EvaluationContext ?? {}), environment: env };
  if (userId !== undefined) {
    ctx.targetingKey = userId;
    ctx.userId = userId;
  }
  return ctx;
}

function summary(f: FeatureInterface): Record<string, unknown> {
  const out: Record<string, unknown> = { name: f.name, enabled: f.enabled };
  if (f.type !== undefined) out.type = f.type;
  if (f.description !== undefined && f.description !== null) out.description = f.description;
  if (f.stale !== undefined) out.stale = f.stale;
  return out;
}

function details(f: FeatureInterface, set: FlagSet): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: f.name,
    enabled: f.enabled,
    variants: (f.variants ?? []).map((v) => {
      const x: Record<string, unknown> = { name: v.name, weight: v.weight };
      if (v.stickiness) x.stickiness = v.stickiness;
      if (v.payload) x.payload = v.payload;
      return x;
    }),
    strategies: (f.strategies ?? []).map((st) => {
      const x: Record<string, unknown> = { name: st.name, parameters: st.parameters ?? {} };
      if (st.constraints?.length) x.constraints = st.constraints;
      if (st.segments?.length) {
        x.segments = st.segments.map((id) => set.segments.get(id) ?? { id });
      }
      const sv = (st as { variants?: unknown[] }).variants;
      if (sv?.length) x.variants = sv;
      return x;
    }),
  };
  for (
    const k of [
      "type",
      "description",
      "project",
      "stale",
      "impressionData",
      "dependencies",
    ] as const
  ) {
    if (f[k] !== undefined && f[k] !== null) out[k] = f[k];
  }
  return out;
}
