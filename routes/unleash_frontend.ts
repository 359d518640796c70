/**
 * Unleash's Frontend API, as Unleash and Unleash Edge serve it, so browser and mobile SDKs
 * (`unleash-proxy-client` and those built on it) use the service unchanged with
 * `url: <service>/api/frontend`: `GET`/`POST /api/frontend` (the flags enabled for the
 * context in the query or the body's `context`, with variants, evaluated on the HTTP thread
 * over the FlagActor's snapshot), `POST /api/frontend/client/metrics` and `register` (usage,
 * counted with the Client API's). CORS for `CORS_ORIGINS`: each path declares its preflight
 * `OPTIONS` route open, and the fetch wrapper adds the response headers ({@link FrontendCors}).
 *
 * The environment is the token's when it is bound to one; else the one the request names
 * (`X-Environment`, else `?environment=` other than the SDK's placeholder `default`;
 * routes/bound_environment.ts); else the default flag environment. The `environment` of the
 * SDK's context never chooses anything else: Unleash ignores it too.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { OPEN, requires } from "./access.ts";
import { sdkEnvironment } from "./bound_environment.ts";
import { environmentParameters, MetricsBody, RegisterBody, reportUsage } from "./unleash.ts";
import { type AppEnv, newRouter } from "./router.ts";
import { jsonBody, jsonContent, problemResponses } from "./openapi.ts";
import type { FlagClient } from "../actors/flags_client.ts";
import type { Settings } from "../lib/settings.ts";
import type { ApiToken } from "../lib/auth.ts";
import { frontendContext } from "../lib/flags/frontend.ts";
import { notModified } from "../lib/flags/client_api.ts";

export interface UnleashFrontendDeps {
  settings: Settings;
  flags: FlagClient;
  /** The configured API tokens: a token's bound environment is read from its entry. */
  tokens: ApiToken[];
}

const FRONTEND = "/api/frontend";
const METRICS = "/api/frontend/client/metrics";
const REGISTER = "/api/frontend/client/register";

/** The Frontend API's paths: the fetch wrapper adds CORS headers to every answer on them. */
export const FRONTEND_ROUTES: ReadonlySet<string> = new Set([FRONTEND, METRICS, REGISTER]);

/** What a preflight may ask to send: header names, comma separated (RFC 9110 tokens). */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/;

/**
 * CORS for the Frontend API from `CORS_ORIGINS`: none configured, no header is ever added
 * (browsers then refuse cross-origin calls); `*`, any origin; else the listed origins,
 * echoed with `Vary: Origin`. No credentials: the SDKs send their key in a header.
 */
export class FrontendCors {
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;

  constructor(origins: readonly string[]) {
    this.#any = origins.includes("*");
    this.#origins = new Set(origins);
  }

  /** Whether any origin is configured. */
  get enabled(): boolean {
    return this.#any || this.#origins.size > 0;
  }

  /** The `Access-Control-Allow-Origin` for a request from `origin`; null: none. */
  #allowed(origin: string | null): string | null {
    if (this.#any) return "*";
    return origin !== null && this.#origins.has(origin) ? origin : null;
  }

  /**
   * Adds the CORS response headers to `res` (any status, refusals included, so a browser
   * can read why it was refused) when `req` comes from an allowed origin.
   */
  decorate(req: Request, res: Response): void {
    if (!this.enabled) return;
    // The answer depends on Origin whenever origins are listed: caches must key on it.
    if (!this.#any) res.headers.append("vary", "Origin");
    const allow = this.#allowed(req.headers.get("origin"));
    if (allow === null) return;
    res.headers.set("access-control-allow-origin", allow);
    // The SDK reads the ETag to send If-None-Match on its next poll.
    res.headers.set("access-control-expose-headers", "ETag, X-Request-Id");
  }

  /** The answer to a preflight for a path serving `methods`. */
  preflight(req: Request, methods: string): Response {
    const headers = new Headers({ allow: `${methods}, OPTIONS` });
    if (this.#allowed(req.headers.get("origin")) !== null) {
      headers.set("access-control-allow-methods", methods);
      const asked = req.headers.get("access-control-request-headers");
      // Any header the SDK is configured to send (`customHeaders`) may be asked for.
      if (asked !== null && asked.length <= 1024 && HEADER_LIST.test(asked.trim())) {
        headers.set("access-control-allow-headers", asked.trim());
      }
      headers.set("access-control-max-age", "86400");
    }
    // `Vary: Origin` comes with the other response headers (decorate).
    if (!this.#any) headers.set("vary", "Access-Control-Request-Headers");
    return new Response(null, { status: 204, headers });
  }
}

const Variant = z.object({
  name: z.string(),
  enabled: z.boolean(),
  payload: z.object({ type: z.string(), value: z.string() }).optional(),
  feature_enabled: z.boolean(),
  featureEnabled: z.boolean(),
});

const Toggles = z.object({
  toggles: z.array(z.object({
    name: z.string(),
    enabled: z.literal(true),
    variant: Variant,
    impressionData: z.boolean(),
  })),
}).openapi("UnleashFrontendToggles");

const FrontendBody = z.looseObject({
  context: z.record(z.string().max(255), z.unknown()).optional().openapi({
    description: "The Unleash context: userId, sessionId, remoteAddress, currentTime, " +
      "properties; any other member is a property. `environment` and `appName` do not choose " +
      "the environment.",
    example: { userId: "42", properties: { region: "eu" } },
  }),
}).openapi("UnleashFrontendRequest");

const frontendParameters = environmentParameters(
  "the frontend SDK sends its context's `environment` here, and its default `default` names none.",
);

const usageResponses = { 200: { description: "Accepted" }, ...problemResponses(400, 403, 413) };

type Router = ReturnType<typeof newRouter>;

/** The Frontend API routes, their preflights included. */
export function unleashFrontendRoutes(deps: UnleashFrontendDeps): Router {
  const cors = new FrontendCors(deps.settings.CORS_ORIGINS);
  const environmentOf = sdkEnvironment(deps.settings, deps.tokens);

  const answer = async (c: Context<AppEnv>, raw: Record<string, unknown>, get: boolean) => {
    const env = environmentOf(c);
    const a = await deps.flags.evaluator.frontend(env, frontendContext(raw, env));
    const headers = { etag: a.etag, "cache-control": "no-cache" };
    // If-None-Match is a GET's precondition; a POST answers in full (as Unleash does).
    // Weak comparison (RFC 9110 §8.8.3.2): notModified strips `W/` from the request's tags.
    if (get && notModified(c.req.header("if-none-match") ?? null, a.etag.slice(2))) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(a.body, { headers: { "content-type": "application/json", ...headers } });
  };

  const r = newRouter();
  const description = "The flags enabled for the context, each with its variant, as Unleash's " +
    "Frontend API answers them (disabled flags are left out). The token may be sent raw in " +
    "`Authorization`, as the SDKs send it; with the service open any key is accepted. Weak " +
    "`ETag`; `If-None-Match` gives 304 on GET.";
  r.openapi(
    createRoute({
      method: "get",
      path: FRONTEND,
      ...requires(["flags:read"]),
      tags: ["Unleash Frontend API"],
      summary: "Unleash Frontend API: the enabled flags for a context in the query",
      description: description + " Context fields are query parameters (`userId=42`, " +
        "`properties[region]=eu` or `region=eu`).",
      parameters: frontendParameters,
      responses: {
        200: jsonContent(Toggles, "The enabled flags"),
        304: { description: "Not modified" },
        ...problemResponses(400, 403, 503),
      },
    }),
    async (c) => {
      const q: Record<string, unknown> = c.req.queries();
      return await answer(c, q, true) as never;
    },
  );
  r.openapi(
    createRoute({
      method: "post",
      path: FRONTEND,
      ...requires(["flags:read"]),
      tags: ["Unleash Frontend API"],
      summary: "Unleash Frontend API: the enabled flags for a context in the body",
      description: description + " The context is the body's `context` (`usePOSTrequests`).",
      parameters: frontendParameters,
      request: jsonBody(FrontendBody),
      responses: {
        200: jsonContent(Toggles, "The enabled flags"),
        ...problemResponses(400, 403, 413, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json") as z.infer<typeof FrontendBody>;
      return await answer(c, body.context ?? {}, false) as never;
    },
  );

  const instanceOf = (body: { appName: string; instanceId?: string }) =>
    `${body.appName}/${body.instanceId ?? "-"}`;
  r.openapi(
    createRoute({
      method: "post",
      path: METRICS,
      // Reporting usage changes no definition: the token the SDK reads with may send it.
      ...requires(["flags:read"]),
      tags: ["Unleash Frontend API"],
      summary: "Unleash Frontend API: an SDK reports usage",
      description: "`yes`/`no` (and variant) counts per flag, joined with the Client API's: " +
        "reported to Unleash (unless UNLEASH_DISABLE_METRICS) and `flag_sdk_answers_total` " +
        "in /metrics; counts of flags the environment does not define are dropped.",
      parameters: frontendParameters,
      request: jsonBody(MetricsBody),
      responses: usageResponses,
    }),
    async (c) => {
      const body = c.req.valid("json") as z.infer<typeof MetricsBody>;
      await reportUsage(deps.flags, environmentOf(c), instanceOf(body), body);
      return new Response(null, { status: 200 }) as never;
    },
  );
  r.openapi(
    createRoute({
      method: "post",
      path: REGISTER,
      ...requires(["flags:read"]),
      tags: ["Unleash Frontend API"],
      summary: "Unleash Frontend API: an SDK registers",
      description: "Accepted and counted (`flag_sdk_instances` in /metrics).",
      parameters: frontendParameters,
      request: jsonBody(RegisterBody),
      responses: usageResponses,
    }),
    async (c) => {
      const body = c.req.valid("json") as z.infer<typeof RegisterBody>;
      await deps.flags.clientUsage({
        env: environmentOf(c),
        instance: instanceOf(body),
        toggles: null,
      });
      return new Response(null, { status: 200 }) as never;
    },
  );

  // Preflights carry no credentials (browsers never send them): declared open here, on the
  // route that answers them, so no request reaches the Frontend API itself without a token.
  for (const [path, methods] of [[FRONTEND, "GET, POST"], [METRICS, "POST"], [REGISTER, "POST"]]) {
    r.openapi(
      createRoute({
        method: "options",
        path,
        ...OPEN,
        tags: ["Unleash Frontend API"],
        summary: "CORS preflight",
        description: "Answers browsers' preflight for the origins of CORS_ORIGINS (none: no " +
          "CORS headers, and browsers refuse the call).",
        responses: { 204: { description: "The allowed methods, headers and origin" } },
      }),
      (c) => cors.preflight(c.req.raw, methods) as never,
    );
  }
  return r;
}
