/**
 * Feature-flag endpoints (spec 18–23) and OFREP. Evaluation, the listing and a flag's
 * definition are answered on the HTTP thread ({@link FlagClient.evaluator}, over the
 * snapshots the FlagActor publishes): waking the worker would cost more than the work. Only
 * a sync goes to the actor.
 */
import { requires } from "./access.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { tryDecodeURIComponent } from "hono/utils/url";
import { newRouter } from "./router.ts";
import type { AppEnv } from "./router.ts";
import type { FlagClient } from "../actors/flags_client.ts";
import type { Settings } from "../lib/settings.ts";
import type { ApiToken } from "../lib/auth.ts";
import { boundEnvironments } from "./bound_environment.ts";
import {
  BooleanBody,
  BulkBody,
  EvaluateBody,
  flagEnvironments,
  FlagName,
  OfrepBody,
} from "../lib/flags/api.ts";
import { jsonBody, jsonContent, problemResponses } from "./openapi.ts";
import { errorToProblem, type Problem, problemResponse } from "../lib/problem.ts";

export interface FlagDeps {
  settings: Settings;
  flags: FlagClient;
  /** The API tokens: a token bound to one environment evaluates there by default. */
  tokens?: readonly ApiToken[];
}

const JSON_HEADERS = { "content-type": "application/json" };

const json = (body: string, status = 200, extra?: Record<string, string>) =>
  new Response(body, { status, headers: extra ? { ...JSON_HEADERS, ...extra } : JSON_HEADERS });

const Resolution = z.object({
  flag_name: z.string(),
  value: z.unknown(),
  reason: z.string().openapi({ example: "TARGETING_MATCH" }),
  variant: z.string().optional(),
  environment: z.string(),
  error_code: z.string().optional().openapi({ example: "FLAG_NOT_FOUND" }),
}).openapi("FlagResolution");

const OfrepSuccess = z.object({
  key: z.string(),
  value: z.unknown(),
  reason: z.string(),
  variant: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()),
}).openapi("OfrepEvaluationSuccess");
const OfrepFailure = z.object({
  key: z.string().optional(),
  errorCode: z.string(),
  errorDetails: z.string().optional(),
}).openapi("OfrepEvaluationFailure");

const EVALUATE_OPS: Record<string, "evaluate" | "boolean" | "bulk"> = {
  "/api/v1/feature-flags/evaluate": "evaluate",
  "/api/v1/feature-flags/evaluate/boolean": "boolean",
  "/api/v1/feature-flags/evaluate/bulk": "bulk",
};

/**
 * The evaluation endpoints without Hono's request pipeline: a POST that the router matched
 * to one of them (`route`, after authorization), whose body the fetch wrapper has read
 * within its limits (`body`), is evaluated at once (the routes below document them). A
 * do-nothing POST route through Hono's pipeline topped out at ~0.37x of bare Deno.serve
 * here (bench/).
 * @returns the answer, or null when the request is not one of them.
 */
export function fastEvaluation(flags: FlagClient) {
  return (body: string, requestId: string, route: string, bound?: string): Response | null => {
    const op = EVALUATE_OPS[route];
    return op === undefined
      ? null
      : evaluated(flags, op, body, { instance: route, requestId }, bound);
  };
}

/** One evaluation's answer, for the fast path and the routes alike (errors as problems). */
function evaluated(
  flags: FlagClient,
  op: "evaluate" | "boolean" | "bulk",
  body: string,
  ctx: { instance: string; requestId: string },
  bound?: string,
): Response {
  // The request id goes in now: adding a header to a built Response costs more.
  const headers = { "x-request-id": ctx.requestId };
  try {
    return json(flags.evaluator.evaluate(op, body, bound), 200, headers);
  } catch (err) {
    return problemResponse(errorToProblem(err, ctx), headers);
  }
}

/**
 * How a body the fetch wrapper refused is answered on an OFREP route: a 400 in OFREP's own
 * shape (`PARSE_ERROR`, and the flag's key on the single-flag route, decoded as Hono decodes
 * the handler's `key`), as the evaluator answers a body it cannot parse; any other status as
 * a problem.
 */
export function ofrepRefusal(route: string, path: string) {
  const key = route === "/ofrep/v1/evaluate/flags/:key"
    ? tryDecodeURIComponent(path.slice(path.lastIndexOf("/") + 1))
    : null;
  return (p: Problem, headers: Record<string, string>): Response => {
    if (p.status !== 400) return problemResponse(p, headers);
    return ofrepBadRequest(key, "PARSE_ERROR", p.detail, headers);
  };
}

/** OFREP's own 400: `{key?, errorCode, errorDetails}` (the key on single-flag routes). */
function ofrepBadRequest(
  key: string | null,
  errorCode: string,
  errorDetails: string,
  headers?: Record<string, string>,
): Response {
  const err = { errorCode, errorDetails };
  return json(JSON.stringify(key === null ? err : { key, ...err }), 400, headers);
}

export function flagRoutes(deps: FlagDeps) {
  const envs = flagEnvironments(deps.settings);
  const boundTo = boundEnvironments(deps.tokens ?? []);
  const x: Ctx = {
    ...deps,
    envs,
    bound: (c) => c.env.principal === null ? undefined : boundTo.get(c.env.principal),
    EnvQuery: z.object({
      environment: z.string().refine((e) => envs.includes(e), `must be one of ${envs.join(", ")}`)
        .openapi({ example: envs[0] }),
    }),
  };
  const r = newRouter();
  for (const add of [evaluations, list, sync, getFlag, ofrepOne, ofrepAll]) add(r, x);
  return r;
}

type Router = ReturnType<typeof newRouter>;

/** What the flag routes share: their deps and the environments flags are served for. */
interface Ctx extends FlagDeps {
  envs: string[];
  /** The environment the request's token is bound to, if any. */
  bound: (c: Context<AppEnv>) => string | undefined;
  EnvQuery: z.ZodObject<{ environment: z.ZodType<string> }>;
}

/** The three evaluation endpoints; the fetch wrapper answers them first (fastEvaluation). */
function evaluations(r: Router, x: Ctx): void {
  const evaluation = (
    path: string,
    op: "evaluate" | "boolean" | "bulk",
    schema: z.ZodType,
    response: z.ZodType,
    summary: string,
    description: string,
  ) => {
    r.openAPIRegistry.registerPath(createRoute({
      method: "post",
      path,
      ...requires(["flags:read"]),
      tags: ["Feature flags"],
      summary,
      description,
      request: jsonBody(schema),
      responses: { 200: jsonContent(response, "Evaluated"), ...problemResponses(400, 413) },
    }));
    r.post(
      path,
      async (c) =>
        evaluated(
          x.flags,
          op,
          await c.req.text(),
          { instance: path, requestId: c.env.requestId },
          x.bound(c),
        ),
    );
  };

  evaluation(
    "/api/v1/feature-flags/evaluate",
    "evaluate",
    EvaluateBody,
    Resolution,
    "Evaluate a feature flag",
    "Local evaluation with Unleash semantics through OpenFeature. The flag type is `type`, " +
      "else the JSON type of `default_value` (boolean when absent): booleans answer the " +
      "enabled state, strings, numbers and objects the selected variant's payload. Errors " +
      "(`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `PROVIDER_NOT_READY`) answer `default_value` with " +
      "reason `ERROR` and `error_code`, never a 5xx. Reasons: STATIC, TARGETING_MATCH, SPLIT, " +
      "DEFAULT, DISABLED, CACHED, STALE, ERROR.",
  );
  evaluation(
    "/api/v1/feature-flags/evaluate/boolean",
    "boolean",
    BooleanBody,
    Resolution.omit({ variant: true }).openapi("BooleanFlagResolution"),
    "Evaluate a boolean feature flag",
    "The enabled state of the flag; `default_value` (false when absent) on error.",
  );
  evaluation(
    "/api/v1/feature-flags/evaluate/bulk",
    "bulk",
    BulkBody,
    z.record(
      z.string(),
      z.object({ value: z.unknown(), reason: z.string(), error_code: z.string().optional() }),
    ).openapi("BulkFlagResolution"),
    "Evaluate several feature flags",
    "Up to 200 flags with one context; answers an object keyed by flag name.",
  );
}

/** `GET /api/v1/feature-flags`: every flag of an environment. */
function list(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/feature-flags",
      ...requires(["flags:read"]),
      tags: ["Feature flags"],
      summary: "List feature flags",
      description: "Every flag of the environment: name and enabled, plus type, description " +
        "and stale where the source gives them. Answered from the synced definitions.",
      request: { query: x.EnvQuery },
      responses: {
        200: jsonContent(
          z.array(z.object({
            name: z.string(),
            enabled: z.boolean(),
            type: z.string().optional(),
            description: z.string().optional(),
            stale: z.boolean().optional(),
          })),
          "Flags",
        ),
        ...problemResponses(400, 503),
      },
    }),
    (c) => json(x.flags.evaluator.list(c.req.valid("query").environment)) as never,
  );
}

/** `POST /api/v1/feature-flags/sync`: fetches the definitions now. */
function sync(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/feature-flags/sync",
      ...requires(["flags:write"]),
      tags: ["Feature flags"],
      summary: "Sync feature flags now",
      description: "Fetches the environment's definitions from Unleash (or the flags file) now. " +
        "503 when the source cannot be reached; evaluation goes on from the last definitions.",
      request: { query: x.EnvQuery },
      responses: {
        200: jsonContent(
          z.object({ environment: z.string(), flags_synced: z.number(), timestamp: z.string() }),
          "Synced",
        ),
        ...problemResponses(400, 503),
      },
    }),
    async (c) => json(await x.flags.sync({ env: c.req.valid("query").environment })) as never,
  );
}

/** `GET /api/v1/feature-flags/{name}`: one flag's definition. */
function getFlag(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/feature-flags/{name}",
      ...requires(["flags:read"]),
      tags: ["Feature flags"],
      summary: "Get a feature flag",
      description: "The flag's definition in the environment: enabled, variants, strategies " +
        "(with constraints, segments and strategy variants), and type, description, project, " +
        "stale, dependencies where known.",
      request: { params: z.object({ name: FlagName }), query: x.EnvQuery },
      responses: {
        200: jsonContent(
          z.object({
            name: z.string(),
            enabled: z.boolean(),
            variants: z.array(z.object({ name: z.string(), weight: z.number() }).passthrough()),
            strategies: z.array(
              z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()) })
                .passthrough(),
            ),
          }).passthrough().openapi("FeatureFlag"),
          "The flag",
        ),
        ...problemResponses(400, 404, 503),
      },
    }),
    (c) =>
      json(
        x.flags.evaluator.get(c.req.valid("query").environment, c.req.valid("param").name),
      ) as never,
  );
}

// OFREP (OpenFeature Remote Evaluation Protocol): any OpenFeature SDK's OFREP provider.
// An unknown X-Environment is OFREP's own 400 (`INVALID_CONTEXT`), like any other error of
// these endpoints, not a problem document: OFREP providers read `errorCode`.
function ofrepEnv(
  x: Ctx,
  c: Context<AppEnv>,
  key: string | null,
): string | null | Response {
  // A bound token's request names no other environment (the fetch wrapper refused it).
  const e = c.req.header("x-environment") ?? x.bound(c) ?? null;
  if (e === null || x.envs.includes(e)) return e;
  return ofrepBadRequest(
    key,
    "INVALID_CONTEXT",
    `X-Environment must be one of ${x.envs.join(", ")}`,
  );
}

const ofrepHeaders = {
  name: "X-Environment",
  in: "header" as const,
  required: false,
  schema: { type: "string" as const },
  description: "The environment (default: UNLEASH_ENVIRONMENT, else DEFAULT_ENVIRONMENT)",
};

/** `POST /ofrep/v1/evaluate/flags/{key}`: OFREP, one flag. */
function ofrepOne(r: Router, x: Ctx): void {
  r.openAPIRegistry.registerPath(createRoute({
    method: "post",
    path: "/ofrep/v1/evaluate/flags/{key}",
    ...requires(["flags:read"]),
    tags: ["OFREP"],
    summary: "OFREP: evaluate one flag",
    description: "A selected variant with a payload answers the payload (typed by its own " +
      "type) and the variant name; any other flag answers its enabled state.",
    request: { params: z.object({ key: z.string() }), ...jsonBody(OfrepBody) },
    parameters: [ofrepHeaders],
    responses: {
      200: jsonContent(OfrepSuccess, "Evaluated"),
      400: jsonContent(OfrepFailure, "Invalid context"),
      404: jsonContent(OfrepFailure, "FLAG_NOT_FOUND"),
    },
  } as never));
  r.post("/ofrep/v1/evaluate/flags/:key", async (c) => {
    const key = c.req.param("key");
    const env = ofrepEnv(x, c, key);
    if (env instanceof Response) return env;
    const res = await x.flags.evaluator.ofrep({
      key,
      env,
      body: await c.req.text(),
      inm: null,
    });
    return json(res.body, res.status);
  });
}

/** `POST /ofrep/v1/evaluate/flags`: OFREP, every flag (ETag, 304). */
function ofrepAll(r: Router, x: Ctx): void {
  r.openAPIRegistry.registerPath(createRoute({
    method: "post",
    path: "/ofrep/v1/evaluate/flags",
    ...requires(["flags:read"]),
    tags: ["OFREP"],
    summary: "OFREP: evaluate every flag",
    description: "Strong `ETag`; `If-None-Match` gives 304.",
    request: jsonBody(OfrepBody),
    parameters: [ofrepHeaders],
    responses: {
      200: jsonContent(
        z.object({ flags: z.array(z.union([OfrepSuccess, OfrepFailure])) }).openapi(
          "OfrepBulkEvaluationSuccess",
        ),
        "Evaluated",
      ),
      304: { description: "Not modified" },
      400: jsonContent(OfrepFailure, "Invalid context"),
    },
  } as never));
  r.post("/ofrep/v1/evaluate/flags", async (c) => {
    const env = ofrepEnv(x, c, null);
    if (env instanceof Response) return env;
    const res = await x.flags.evaluator.ofrep({
      key: null,
      env,
      body: await c.req.text(),
      inm: c.req.header("if-none-match") ?? null,
    });
    if (res.status === 304) {
      return new Response(null, { status: 304, headers: { etag: res.etag! } });
    }
    return json(res.body, res.status, res.etag ? { etag: res.etag } : undefined);
  });
}
