/**
 * The HTTP front: request ids, one JSON log line per request, a 1 MiB body limit, and the
 * one place where every error becomes `application/problem+json`. Routes are mounted from
 * one module per resource; this file holds no handler logic.
 */
import type { Context, ExecutionContext } from "hono";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorToProblem, problem, problemResponse } from "../lib/problem.ts";
import { bodyLimits, BodyReader } from "../lib/http/body.ts";
import { log } from "../lib/log.ts";
import { Authenticator, clientKey, loadTokens, RateLimiter } from "../lib/auth.ts";
import {
  type Access,
  accessKey,
  type AccessTable,
  accessTable,
  requestPath,
  scopesFor,
  UNDECLARED,
} from "./access.ts";
import type { ApiToken } from "../lib/auth.ts";
import type { Settings } from "../lib/settings.ts";
import { type AppEnv, BODY_LIMIT_BYTES, newRouter, splitUrl } from "./router.ts";
import { healthRoutes, type Readiness, readiness } from "./health.ts";
import { metaRoutes } from "./meta.ts";
import { docsRoutes } from "./docs.ts";
import type { ActorHandle } from "./actors.ts";
import { configRoutes, fastConfigGet, type GetMemo } from "./config.ts";
import { fastRegistryGet, registryRoutes } from "./registry.ts";
import { whoamiRoutes } from "./whoami.ts";
import { uiRoutes } from "./ui/mod.tsx";
import { metricsRoutes } from "./metrics.ts";
import { type HistogramSeries, httpDuration } from "../lib/metrics.ts";
import { fastEvaluation, flagRoutes, ofrepRefusal } from "./flags.ts";
import { springConfigRoutes } from "./spring_config.ts";
import { unleashRoutes, USAGE_ROUTES } from "./unleash.ts";
import { FRONTEND_ROUTES, FrontendCors, unleashFrontendRoutes } from "./unleash_frontend.ts";
import {
  bodyEnvironmentRefusal,
  boundEnvironments,
  environmentRefusal,
} from "./bound_environment.ts";
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

/** The methods the routes answer (HEAD and OPTIONS by Hono's rules); any other is a 501. */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const otherMethod = httpDuration.series(["OTHER", "unmatched", "501"]);

function notImplemented(req: Request, id: string, t0: number, logging: boolean): Response {
  const method = req.method.slice(0, 32);
  const res = problemResponse(
    problem(501, `The method ${JSON.stringify(method)} is not implemented`, {
      instance: splitUrl(req.url)[0].slice(0, 256),
      request_id: id,
    }),
    { "x-request-id": id, allow: [...METHODS].join(", ") },
  );
  const ms = performance.now() - t0;
  httpDuration.observeInto(otherMethod, ms / 1000);
  if (logging) logRequest(requestLogHead(method, null, req.url), 501, ms, id);
  return res;
}

export function buildApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();

  // Request ids and the request log live in a wrapper around fetch, not in middleware:
  // Hono answers synchronously only when one handler matches, and any middleware made
  // every request async (-25% throughput on GET /live, bench/).
  const inner = app.fetch;
  const idPrefix = crypto.randomUUID().slice(0, 8);
  let seq = 0;
  const tokens = deps.tokens ?? loadTokens(deps.settings);
  const guard = new Guard(deps.settings, tokens);
  const boundTo = boundEnvironments(tokens);
  const fastFlags = deps.flags ? fastEvaluation(deps.flags) : null;
  const cors = deps.settings.CORS_ORIGINS.length > 0
    ? new FrontendCors(deps.settings.CORS_ORIGINS)
    : null;
  const getMemo: GetMemo = new Map();
  const configGet = deps.config ? fastConfigGet(deps.config, getMemo) : null;
  const registryGet = deps.registry
    ? fastRegistryGet({ settings: deps.settings, registry: deps.registry })
    : null;
  const ready = readiness(Object.values(deps.actors));
  const bodies = new BodyReader(bodyLimits(deps.settings, BODY_LIMIT_BYTES));
  // Its access table is read once every route is mounted, below.
  const resolver = new RouteResolver(app);
  app.fetch = (req: Request, env?: unknown, ctx?: ExecutionContext) => {
    const logging = log.enabled("info");
    const t0 = performance.now();
    const given = req.headers.get("x-request-id");
    const id = given && REQUEST_ID.test(given) ? given : `${idPrefix}-${(++seq).toString(36)}`;
    // Methods are case-sensitive tokens (RFC 9110 §9.1); only ours reach the router, and the
    // metrics and the log are labelled by these few.
    if (!METHODS.has(req.method)) return notImplemented(req, id, t0, logging);
    const r = resolver.resolve(req);
    const finish = (res: Response, idSet = false) => {
      if (!idSet && !res.headers.has("x-request-id")) res.headers.set("x-request-id", id);
      // Every answer on the Frontend API's paths, refusals too: a browser reads why.
      if (cors !== null && r.route !== null && FRONTEND_ROUTES.has(r.route)) {
        cors.decorate(req, res);
      }
      const ms = performance.now() - t0;
      httpDuration.observeInto(
        r.byStatus[res.status] ??= httpDuration.series([
          req.method,
          r.route ?? "unmatched",
          String(res.status),
        ]),
        ms / 1000,
      );
      if (logging) {
        logRequest(r.logHead ??= requestLogHead(req.method, r.route, req.url), res.status, ms, id);
      }
      return res;
    };
    if (!r.hostOk) return finish(badHost(r.path, id));
    let principal: string | null = null;
    if (guard.enabled) {
      const denied = guard.check(req, env, id, r);
      if (denied instanceof Response) return finish(denied);
      principal = denied;
    }
    if (req.method === "GET") {
      if (r.route === "/ready") return ready.fast(id).then((res) => finish(res, true));
      const fast = configGet?.(req, id);
      if (fast) return finish(fast, true);
      const listed = registryGet?.(r.route, r.path);
      if (listed) return finish(listed);
    } else if (req.method !== "HEAD" && hasBody(req)) {
      // Every body is read here, within its limits, once the route has let the caller in;
      // the routes get it as text (Hono re-reads it from the new Request).
      const answer = r.route?.startsWith("/ofrep/") ? ofrepRefusal(r.route, r.path) : undefined;
      return bodies.read(req, { instance: r.path, requestId: id, answer }).then((text) => {
        if (text instanceof Response) return finish(text, true);
        const bound = principal === null ? undefined : boundTo.get(principal);
        const other = bound === undefined || USAGE_ROUTES.has(r.route!)
          ? null
          : bodyEnvironmentRefusal(bound, text);
        if (other !== null) {
          return finish(problemResponse(problem(403, other, { instance: r.path, request_id: id })));
        }
        if (fastFlags && req.method === "POST" && r.route !== null) {
          const fast = fastFlags(text, id, r.route, bound);
          if (fast) return finish(fast, true);
        }
        // From the request itself: its URL and method stay exactly as they were resolved and
        // authorized (a URL string would be parsed again: `\\` → `/`, `post` → `POST`).
        const read = new Request(req, { body: text });
        const res = inner(read, { requestId: id, principal, remoteAddr: addrOf(env) }, ctx);
        return res instanceof Promise ? res.then(finish) : finish(res);
      });
    }
    const res = inner(req, { requestId: id, principal, remoteAddr: addrOf(env) }, ctx);
    return res instanceof Promise ? res.then(finish) : finish(res);
  };

  mountRoutes(app, { ...deps, tokens }, ready, getMemo);
  resolver.declared(accessTable(app));
  return app;
}

/** The error and not-found answers, and every resource's routes. */
function mountRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  ready: Readiness,
  getMemo: GetMemo,
): void {
  app.onError((err, c) => {
    const p = errorToProblem(err, { instance: c.req.path, requestId: c.env?.requestId ?? "" });
    return problemResponse(p);
  });

  app.notFound((c) => notFoundOrNotAllowed(app, c));

  app.route("/", metaRoutes(deps));
  app.route(
    "/",
    metricsRoutes({ actors: deps.actors, config: deps.config, flags: deps.flags }),
  );
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
  if (deps.flags) {
    app.route(
      "/",
      flagRoutes({ settings: deps.settings, flags: deps.flags, tokens: deps.tokens ?? [] }),
    );
  }
  if (deps.flags) {
    app.route(
      "/",
      unleashRoutes({ settings: deps.settings, flags: deps.flags, tokens: deps.tokens ?? [] }),
    );
    app.route(
      "/",
      unleashFrontendRoutes({
        settings: deps.settings,
        flags: deps.flags,
        tokens: deps.tokens ?? [],
      }),
    );
  }
  if (deps.config) {
    app.route(
      "/",
      springConfigRoutes({
        settings: deps.settings,
        config: deps.config,
        tokens: deps.tokens ?? [],
      }),
    );
  }
  app.route("/", whoamiRoutes(deps.tokens ?? []));
  app.route(
    "/",
    uiRoutes({
      settings: deps.settings,
      tokens: deps.tokens ?? [],
      fetchApp: (req, env) => app.fetch(req, env as never),
    }),
  );
  app.route("/", docsRoutes(app));
}

/**
 * Token, scope and rate limits for the route a request was matched to. A path no route
 * serves needs a valid token too, so an unauthenticated caller learns nothing from 404s.
 */
class Guard {
  readonly #settings: Settings;
  readonly #auth: Authenticator;
  readonly #limiter: RateLimiter;
  readonly #failures: RateLimiter;
  constructor(settings: Settings, tokens: ApiToken[]) {
    this.#settings = settings;
    this.#auth = new Authenticator(tokens);
    this.#limiter = new RateLimiter(settings.RATE_LIMIT_PER_MINUTE);
    this.#failures = new RateLimiter(settings.AUTH_FAILURES_PER_MINUTE);
  }

  /** False when there is nothing to check (no tokens, no rate limit). */
  get enabled(): boolean {
    return this.#auth.enabled || this.#limiter.enabled;
  }

  /** A refusal, or the principal (null when open). */
  check(req: Request, env: unknown, id: string, r: Resolved): Response | string | null {
    const scopes = r.access === null ? [] : scopesFor(r.access, req.url);
    if (scopes === null) return null;
    const refuse = (status: number, detail: string, headers: Record<string, string> = {}) =>
      problemResponse(problem(status, detail, { instance: r.path, request_id: id }), headers);
    const client = clientKey(addrOf(env)?.hostname ?? "unknown");
    let principal: string | null = null;
    let key = client;
    if (this.#auth.enabled) {
      // An address that failed too often is refused whatever it sends now: a guess that
      // would be right gets the same 429 as one that would be wrong.
      const wait = this.#failures.enabled ? this.#failures.peek(client) : 0;
      if (wait > 0) {
        return refuse(
          429,
          "Too many failed authentications from this address (AUTH_FAILURES_PER_MINUTE " +
            `${this.#settings.AUTH_FAILURES_PER_MINUTE})`,
          { "retry-after": String(wait) },
        );
      }
      const a = this.#auth.check(req.headers.get("authorization"), scopes);
      if (!a.ok) {
        if (a.status === 401 && this.#failures.enabled) this.#failures.take(client);
        return refuse(
          a.status,
          a.detail,
          a.status === 401 ? { "www-authenticate": 'Bearer realm="config-service"' } : {},
        );
      }
      // A token bound to one environment may name no other, on any route.
      const other = environmentRefusal(a.environment, req);
      if (other !== null) return refuse(403, other);
      principal = a.principal;
      key = a.key;
    } else if (r.access === null) {
      return null;
    }
    if (this.#limiter.enabled) {
      const wait = this.#limiter.take(key);
      if (wait > 0) {
        return refuse(
          429,
          `Rate limit of ${this.#settings.RATE_LIMIT_PER_MINUTE} requests a minute exceeded`,
          { "retry-after": String(wait) },
        );
      }
    }
    return principal;
  }
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

/** What a request line holds between `ts` and `status`'s value, for {@link Resolved.logHead}. */
function requestLogHead(method: string, route: string | null, url: string): string {
  return `,"level":"info","msg":"request","method":${JSON.stringify(method)},"route":${
    JSON.stringify(route)
  },"path":${JSON.stringify(splitUrl(url)[0])},"status":`;
}

/**
 * Writes the request line: the JSON the logger would make of `{method, route, path, status,
 * ms, request_id}`, put together from `head` (fixed per URL, kept in {@link Resolved.logHead})
 * and the rest (request ids are [A-Za-z0-9._:-]: nothing to escape), ~4x cheaper than
 * serializing it each time.
 */
function logRequest(head: string, status: number, ms: number, id: string): void {
  log.line(
    "info",
    `{"ts":"${log.timestamp()}"${head}${status},"ms":${
      Math.round(ms * 100) / 100
    },"request_id":"${id}"}`,
  );
}

/** What a request resolved to: its canonical path, route pattern, declared access (null:
 * no route serves the path) and metric series by status; `hostOk` false when its `Host`
 * would change the URL the router and the handlers read. */
interface Resolved {
  method: string;
  path: string;
  route: string | null;
  access: Access | null;
  hostOk: boolean;
  byStatus: Record<number, HistogramSeries>;
  /** The request log line's fixed middle (method, route, path), made at its first line. */
  logHead?: string;
}

/** `host`, `host:port`, `[v6]:port`: nothing that could end the authority of a URL. */
const HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Resolves requests to routes with the router that will serve them, on the path it will
 * serve them by ({@link requestPath}), bounded by URL: hot clients repeat URLs, so the
 * router runs once per distinct URL. Small on purpose: at 5,000 URLs, 100,000 distinct ones
 * (bench/rss.ts) kept ~50 MiB more resident.
 */
class RouteResolver {
  readonly #app: OpenAPIHono<AppEnv>;
  #table: AccessTable = new Map();
  readonly #byUrl = new Map<string, Resolved>();
  /** The last `Host` found good: clients send the same one again and again. */
  #goodHost: string | null = null;
  constructor(app: OpenAPIHono<AppEnv>) {
    this.#app = app;
  }

  /** The routes' declarations; until given, every route is {@link UNDECLARED}. */
  declared(table: AccessTable): void {
    this.#table = table;
    this.#byUrl.clear();
  }

  resolve(req: Request): Resolved {
    const url = req.url;
    const hit = this.#byUrl.get(url);
    if (hit !== undefined && hit.method === req.method) {
      return hit.hostOk ? this.#checkHost(req, hit) : hit;
    }
    const path = requestPath(url);
    // HEAD is answered by the GET route (Hono does the same).
    const method = req.method === "HEAD" ? "GET" : req.method;
    const matched = this.#app.router.match(method, path)[0] as unknown as [[unknown, {
      path: string;
      method: string;
    }]][];
    // Hono runs the matches in the order they were registered, so the route that answers is
    // the first declared one (`/api/v1/config/watch` before `/api/v1/config/:key`); any
    // other match is middleware on the same path, or `*`.
    const paths = matched.map((m) => m[0][1].path).filter((p) => p !== "*");
    const route = paths.find((p) => this.#table.has(accessKey(method, p))) ?? paths[0] ?? null;
    const authority = url.slice(url.indexOf("//") + 2, url.indexOf("/", url.indexOf("//") + 2));
    const r: Resolved = {
      method: req.method,
      path,
      route,
      access: route === null ? null : this.#table.get(accessKey(method, route)) ?? UNDECLARED,
      hostOk: HOST.test(authority),
      byStatus: {},
    };
    if (this.#byUrl.size >= 512) this.#byUrl.clear();
    this.#byUrl.set(url, r);
    return r.hostOk ? this.#checkHost(req, r) : r;
  }

  /** Deno writes `Host` into the URL as sent: one with a `/` would move the path. */
  #checkHost(req: Request, r: Resolved): Resolved {
    const host = req.headers.get("host");
    if (host === null || host === this.#goodHost) return r;
    const url = req.url;
    const at = url.indexOf("//") + 2;
    if (HOST.test(host) && url.startsWith(host, at) && url.charCodeAt(at + host.length) === 47) {
      this.#goodHost = host;
      return r;
    }
    return { ...r, hostOk: false };
  }
}

function badHost(path: string, id: string): Response {
  return problemResponse(
    problem(400, "The Host header must be a host name or address, with an optional port", {
      instance: path,
      request_id: id,
      errors: [{ field: "Host", in: "header", message: "is not a host[:port]" }],
    }),
  );
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

/**
 * Whether a request has a body, from its framing headers when it has them: `req.body` makes
 * the body's stream, which costs a small body's read its fast path (lib/http/body.ts).
 */
function hasBody(req: Request): boolean {
  const h = req.headers;
  return h.has("content-length") || h.has("transfer-encoding") || req.body !== null;
}

/** The client's address from Deno.serve's connection info, when the request has one. */
function addrOf(env: unknown): Deno.NetAddr | undefined {
  const a = (env as { remoteAddr?: Deno.NetAddr } | undefined)?.remoteAddr;
  return a?.transport === "tcp" ? a : undefined;
}
