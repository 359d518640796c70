/**
 * Unleash's Client API, as Unleash Edge serves it, so backend SDKs use the service unchanged
 * with `url: <service>/api`: `GET /api/client/features` (one environment's definitions,
 * ETag/304), `POST /api/client/register` and `POST /api/client/metrics` (usage, counted with
 * ours). A thin translation over FlagActor calls and the same authorization as every route.
 *
 * The environment is the token's when it is bound to one (lib/auth.ts); else the one the
 * request names (`X-Environment`, else `?environment=`; routes/bound_environment.ts); else the
 * default flag environment.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requires } from "./access.ts";
import { sdkEnvironment } from "./bound_environment.ts";
import { newRouter } from "./router.ts";
import { jsonBody, jsonContent, problemResponses } from "./openapi.ts";
import type { FlagClient } from "../actors/flags_client.ts";
import type { Settings } from "../lib/settings.ts";
import type { ApiToken } from "../lib/auth.ts";

export interface UnleashDeps {
  settings: Settings;
  flags: FlagClient;
  /** The configured API tokens: a token's bound environment is read from its entry. */
  tokens: ApiToken[];
}

/** The usage routes: what SDKs write as `environment` in their bodies (Java's `"default"`)
 * is ignored there, so a bound token is not refused for it. */
export const USAGE_ROUTES: ReadonlySet<string> = new Set([
  "/api/client/register",
  "/api/client/metrics",
  "/api/frontend/client/register",
  "/api/frontend/client/metrics",
]);

const JSON_HEADERS = { "content-type": "application/json" };

/** What SDKs send; unknown members are accepted and ignored (newer SDKs add fields). */
const AppIdentity = {
  appName: z.string().min(1).max(255).openapi({ example: "checkout" }),
  instanceId: z.string().max(255).optional().openapi({ example: "checkout-7d9f-1" }),
  connectionId: z.string().max(255).optional(),
  environment: z.string().max(64).optional().openapi({
    description: "Ignored: the environment is the token's, else the request's (see above)",
  }),
  sdkVersion: z.string().max(255).optional().openapi({ example: "unleash-client-node:6.12.0" }),
};

/** An SDK's register call (the Frontend API takes it too). */
export const RegisterBody = z.looseObject({
  ...AppIdentity,
  strategies: z.array(z.string().max(255)).max(1000).optional(),
  started: z.union([z.string().max(64), z.number()]).optional(),
  interval: z.number().nonnegative().optional().openapi({ description: "Poll interval, ms" }),
}).openapi("UnleashClientRegistration");

const Count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** An SDK's usage report (the Frontend API takes it too). */
export const MetricsBody = z.looseObject({
  ...AppIdentity,
  bucket: z.looseObject({
    start: z.union([z.string().max(64), z.number()]),
    stop: z.union([z.string().max(64), z.number()]),
    toggles: z.record(
      z.string().min(1).max(255),
      z.looseObject({
        yes: Count,
        no: Count,
        variants: z.record(z.string().max(255), Count).optional(),
      }),
    ).refine((t) => Object.keys(t).length <= 10_000, "at most 10000 flags"),
  }),
}).openapi("UnleashClientMetrics");

/** An SDK's usage report (either API's metrics body) handed to the FlagActor for `env`. */
export function reportUsage(
  flags: FlagClient,
  env: string,
  instance: string,
  body: z.infer<typeof MetricsBody>,
): Promise<void> {
  const toggles = Object.fromEntries(
    Object.entries(body.bucket.toggles).map(([flag, t]) => [
      flag,
      { yes: t.yes, no: t.no, variants: t.variants ?? {} },
    ]),
  );
  return flags.clientUsage({ env, instance, toggles });
}

/**
 * The OpenAPI parameters by which an SDK request names its environment (see
 * `sdkEnvironment`); `queryNote` says how the query parameter is used by that API's SDKs.
 */
export function environmentParameters(queryNote: string) {
  return [
    {
      name: "X-Environment",
      in: "header" as const,
      required: false,
      schema: { type: "string" as const },
      description: "The environment, when the token is bound to none (default: " +
        "UNLEASH_ENVIRONMENT, else DEFAULT_ENVIRONMENT). A bound token may only name its own.",
    },
    {
      name: "environment",
      in: "query" as const,
      required: false,
      schema: { type: "string" as const },
      description: `The same as X-Environment (the header wins); ${queryNote}`,
    },
  ];
}

const clientParameters = environmentParameters("for clients that cannot set a header.");

type Router = ReturnType<typeof newRouter>;

/** The Client API routes. */
export function unleashRoutes(deps: UnleashDeps): Router {
  const environmentOf = sdkEnvironment(deps.settings, deps.tokens);
  const instanceOf = (body: { appName: string; instanceId?: string }) =>
    `${body.appName}/${body.instanceId ?? "-"}`;

  const r = newRouter();
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/client/features",
      ...requires(["flags:read"]),
      tags: ["Unleash Client API"],
      summary: "Unleash Client API: the environment's flag definitions",
      description: "Client-API JSON (`version`, `features`, `segments`) for backend SDKs, as " +
        "Unleash and Unleash Edge serve it. Strong `ETag`, changed by any change of the " +
        "definitions; `If-None-Match` gives 304. The token may be sent raw in " +
        "`Authorization`, as SDKs send it. `namePrefix`, `project` and `tag` filters are " +
        "not applied: the SDK gets every flag of the environment.",
      parameters: clientParameters,
      responses: {
        200: jsonContent(
          z.object({
            version: z.number(),
            features: z.array(z.looseObject({ name: z.string(), enabled: z.boolean() })),
            segments: z.array(z.looseObject({ id: z.number() })),
          }).openapi("UnleashClientFeatures"),
          "The definitions",
        ),
        304: { description: "Not modified" },
        ...problemResponses(400, 403, 503),
      },
    }),
    async (c) => {
      const res = await deps.flags.clientFeatures({
        env: environmentOf(c),
        inm: c.req.header("if-none-match") ?? null,
      });
      const headers = { etag: res.etag!, "cache-control": "no-cache" };
      if (res.status === 304) return new Response(null, { status: 304, headers }) as never;
      return new Response(res.body, { headers: { ...JSON_HEADERS, ...headers } }) as never;
    },
  );

  const usageRoute = <S extends typeof RegisterBody | typeof MetricsBody>(
    path: string,
    schema: S,
    summary: string,
    description: string,
  ) =>
    createRoute({
      method: "post",
      path,
      // Reporting usage changes no definition: the token an SDK reads with may send it.
      ...requires(["flags:read"]),
      tags: ["Unleash Client API"],
      summary,
      description,
      parameters: clientParameters,
      request: jsonBody(schema),
      responses: { 202: { description: "Accepted" }, ...problemResponses(400, 403, 413) },
    });

  r.openapi(
    usageRoute(
      "/api/client/register",
      RegisterBody,
      "Unleash Client API: an SDK registers",
      "Accepted and counted (`flag_sdk_instances` in /metrics); unknown members are ignored.",
    ),
    async (c) => {
      const body = c.req.valid("json") as z.infer<typeof RegisterBody>;
      await deps.flags.clientUsage({
        env: environmentOf(c),
        instance: instanceOf(body),
        toggles: null,
      });
      return new Response(null, { status: 202 }) as never;
    },
  );

  r.openapi(
    usageRoute(
      "/api/client/metrics",
      MetricsBody,
      "Unleash Client API: an SDK reports usage",
      "`yes`/`no` (and variant) counts per flag. Counts of flags the environment defines " +
        "join the usage the service reports to Unleash (unless UNLEASH_DISABLE_METRICS), and " +
        "`flag_sdk_answers_total` in /metrics in either mode; others are dropped.",
    ),
    async (c) => {
      const body = c.req.valid("json") as z.infer<typeof MetricsBody>;
      await reportUsage(deps.flags, environmentOf(c), instanceOf(body), body);
      return new Response(null, { status: 202 }) as never;
    },
  );
  return r;
}
