/**
 * The HTTP front: request ids, one JSON log line per request, a 1 MiB body limit, and the
 * one place where every error becomes `application/problem+json`. Routes are mounted from
 * one module per resource; this file holds no handler logic.
 */
import type { Context, ExecutionContext } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorToProblem, problem, problemResponse } from "../lib/problem.ts";
import { log } from "../lib/log.ts";
import { Authenticator, loadTokens, RateLimiter, requiredScope } from "../lib/auth.ts";
import type { ApiToken } from "../lib/auth.ts";
import type { Settings } from "../lib/settings.ts";
import { type AppEnv, BODY_LIMIT_BYTES, newRouter, splitUrl } from "./router.ts";
import { healthRoutes, readiness } from "./health.ts";
import { metaRoutes } from "./meta.ts";
import { docsRoutes } from "./docs.ts";
import type { ActorHandle } from "./actors.ts";
import { configRoutes, fastConfigGet, type GetMemo } from "./config.ts";
import { registryRoutes } from "./registry.ts";
import { metricsRoutes } from "./metrics.ts";
import { type HistogramSeries, httpDuration } from "../lib/metrics.ts";
import { fastEvaluation, flagRoutes } from "./flags.ts";
import type { FlagClient } from "../actors/flags_client.ts";
import type { RegistryClient } from "../actors/registry_client.ts";
import type { HealthClient } from "../actors/health_client.ts";
import type { ConfigClient } from "../actors/config_client.ts";
import type { WatchHub } from "../lib/config/watch_hub.ts";

export interface AppDeps {
  settings: Settings;
  /** The actors, by concern. */
  actors: Record<string, ActorHandle>;
  /** Epoch ms the process started. */
  startedAt: number;
  /** The ConfigActor and the watchers' hub; configuration routes are mounted with them. */
  config?: ConfigClient;
  hub?: WatchHub;
  /** The registry and health actors; registry routes are mounted with them. */
  registry?: RegistryClient;
  health?: HealthClient;
  /** The FlagActor; feature-flag and OFREP routes are mounted with it. */
  flags?: FlagClient;
  /** API tokens (default: loaded from the settings); none means the service is open. */
  tokens?: ApiToken[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function tooLarge(path: string, requestId: string): Response {
  return problemResponse(
    problem(413, `Request body is larger than ${BODY_LIMIT_BYTES} bytes`, {
      instance: path,
      request_id: requestId,
    }),
    { "x-request-id": requestId },
  );
}

export function buildApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();

  // Request ids and the request log live in a wrapper around fetch, not in middleware:
  // Hono answers synchronously only when one handler matches, and any middleware made
  // every request async (-25% throughput on GET /live, bench/).
  const inner = app.fetch;
  const idPrefix = crypto.randomUUID().slice(0, 8);
  let seq = 0;
  const auth = new Authenticator(deps.tokens ?? loadTokens(deps.settings));
  const limiter = new RateLimiter(deps.settings.RATE_LIMIT_PER_MINUTE);
  const guarded = auth.enabled || limiter.enabled;
  const fastFlags = deps.flags ? fastEvaluation(deps.flags) : null;
  const getMemo: GetMemo = new Map();
  const configGet = deps.config ? fastConfigGet(deps.config, getMemo) : null;
  const ready = readiness(Object.values(deps.actors));
  app.fetch = (req: Request, env?: unknown, ctx?: ExecutionContext) => {
    const logging = log.enabled("info");
    const t0 = performance.now();
    const given = req.headers.get("x-request-id");
    const id = given && REQUEST_ID.test(given) ? given : `${idPrefix}-${(++seq).toString(36)}`;
    const finish = (res: Response, idSet = false) => {
      if (!idSet && !res.headers.has("x-request-id")) res.headers.set("x-request-id", id);
      const ms = performance.now() - t0;
      const r = routeOf(app, req);
      httpDuration.observeInto(
        r.byStatus[res.status] ??= httpDuration.series([
          req.method,
          r.route ?? "unmatched",
          String(res.status),
        ]),
        ms / 1000,
      );
      if (logging) logRequest(req, r.route, res.status, ms, id);
      return res;
    };
    let principal: string | null = null;
    if (guarded) {
      const denied = guard(req, env, id);
      if (denied instanceof Response) return finish(denied);
      principal = denied;
    }
    if (req.method === "GET") {
      const fast = configGet?.(req, id);
      if (fast) return finish(fast, true);
      const r = ready.fast(req, id);
      if (r) return r.then((res) => finish(res, true));
    } else if (fastFlags && req.method === "POST") {
      const fast = fastFlags(req, id);
      if (fast) return fast.then((res) => finish(res, true));
    }
    const res = inner(req, { requestId: id, principal }, ctx);
    return res instanceof Promise ? res.then(finish) : finish(res);
  };

  /** Token, scope and rate limit: a refusal, or the principal (null when open). */
  const guard = (req: Request, env: unknown, id: string): Response | string | null => {
    const [path, search] = splitUrl(req.url);
    const scopes = requiredScope(req.method, path, search);
    if (!scopes) return null;
    let principal: string | null = null;
    let key: string;
    if (auth.enabled) {
      const r = auth.check(req.headers.get("authorization"), scopes);
      if (!r.ok) {
        return problemResponse(
          problem(r.status, r.detail, { instance: path, request_id: id }),
          r.status === 401 ? { "www-authenticate": 'Bearer realm="config-service"' } : {},
        );
      }
      principal = r.principal;
      key = r.key;
    } else {
      const addr = (env as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr;
      key = `addr:${addr?.hostname ?? "unknown"}`;
    }
    if (limiter.enabled) {
      const wait = limiter.take(key);
      if (wait > 0) {
        return problemResponse(
          problem(
            429,
            `Rate limit of ${deps.settings.RATE_LIMIT_PER_MINUTE} requests a minute exceeded`,
            {
              instance: path,
              request_id: id,
            },
          ),
          { "retry-after": String(wait) },
        );
      }
    }
    return principal;
  };

  // Only methods that carry a body pay for the limit; chunked bodies are counted as read.
  app.on(
    ["POST", "PUT", "PATCH", "DELETE"],
    "*",
    bodyLimit({
      maxSize: BODY_LIMIT_BYTES,
      onError: (c) => tooLarge(c.req.path, c.env.requestId),
    }),
  );

  app.onError((err, c) => {
    const p = errorToProblem(err, { instance: c.req.path, requestId: c.env?.requestId ?? "" });
    return problemResponse(p);
  });

  app.notFound((c) => notFoundOrNotAllowed(app, c));

  app.route("/", metaRoutes(deps));
  app.route("/", metricsRoutes({ actors: deps.actors, config: deps.config }));
  app.route("/", healthRoutes(deps, ready));
  if (deps.config && deps.hub) {
    app.route(
      "/",
      configRoutes({ settings: deps.settings, config: deps.config, hub: deps.hub, getMemo }),
    );
  }
  if (deps.registry && deps.health) {
    app.route(
      "/",
      registryRoutes({ settings: deps.settings, registry: deps.registry, health: deps.health }),
    );
  }
  if (deps.flags) app.route("/", flagRoutes({ settings: deps.settings, flags: deps.flags }));
  app.route("/", docsRoutes(app));
  return app;
}

/** 405 with `Allow` when the path exists under other methods, else 404. */
function notFoundOrNotAllowed(app: OpenAPIHono<AppEnv>, c: Context<AppEnv>): Response {
  const path = c.req.path;
  const allowed = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL" || r.path === "*" || r.path.endsWith("/*")) continue;
    if (routePattern(r.path).test(path)) allowed.add(r.method);
  }
  const ctx = { instance: path, request_id: c.env?.requestId };
  if (allowed.size > 0 && !allowed.has(c.req.method)) {
    if (allowed.has("GET")) allowed.add("HEAD");
    const allow = [...allowed].sort().join(", ");
    return problemResponse(
      problem(405, `${c.req.method} is not allowed on ${path}; allowed: ${allow}`, ctx),
      { allow },
    );
  }
  return problemResponse(problem(404, `No route for ${c.req.method} ${path}`, ctx));
}

function logRequest(
  req: Request,
  route: string | null,
  status: number,
  ms: number,
  id: string,
): void {
  log.info("request", {
    method: req.method,
    route,
    path: splitUrl(req.url)[0],
    status,
    ms: Math.round(ms * 100) / 100,
    request_id: id,
  });
}

/** What a request URL resolved to: its route pattern and its metric series by status. */
interface Resolved {
  method: string;
  route: string | null;
  byStatus: Record<number, HistogramSeries>;
}

/**
 * Route patterns by request URL (bounded): every request is labelled by route in the
 * metrics, and hot clients repeat URLs, so the router runs once per distinct URL. Small on
 * purpose: at 5,000 URLs, 100,000 distinct ones (bench/rss.ts) kept ~50 MiB more resident.
 */
const routes = new Map<string, Resolved>();
function routeOf(app: OpenAPIHono<AppEnv>, req: Request): Resolved {
  const url = req.url;
  const hit = routes.get(url);
  if (hit !== undefined && hit.method === req.method) return hit;
  const [path] = splitUrl(url);
  const matched = app.router.match(req.method, path)[0] as unknown as [[unknown, {
    path: string;
    method: string;
  }]][];
  const route = matched.map((m) => m[0][1]).filter((r) => r.path !== "*").at(-1)?.path ?? null;
  if (routes.size >= 512) routes.clear();
  const r: Resolved = { method: req.method, route, byStatus: {} };
  routes.set(url, r);
  return r;
}

const patterns = new Map<string, RegExp>();
function routePattern(path: string): RegExp {
  let re = patterns.get(path);
  if (!re) {
    const src = path.split("/").map((seg) =>
      seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("/");
    // Exact, like Hono's strict routing: `/health/` is a 404 for GET, so it is no 405 either.
    re = new RegExp(`^${src}$`);
    patterns.set(path, re);
  }
  return re;
}
