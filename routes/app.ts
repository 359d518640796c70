/**
 * The HTTP front: request ids, one JSON log line per request, a 1 MiB body limit, and the
 * one place where every error becomes `application/problem+json`. Routes are mounted from
 * one module per resource; this file holds no handler logic.
 */
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorToProblem, problem, problemResponse } from "../lib/problem.ts";
import { log } from "../lib/log.ts";
import type { Settings } from "../lib/settings.ts";
import { type AppEnv, newRouter } from "./router.ts";
import { healthRoutes } from "./health.ts";
import { metaRoutes } from "./meta.ts";
import { docsRoutes } from "./docs.ts";
import type { ActorHandle } from "./actors.ts";

/** Largest accepted request body, in bytes. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface AppDeps {
  settings: Settings;
  /** The actors, by concern. */
  actors: Record<string, ActorHandle>;
  /** Epoch ms the process started. */
  startedAt: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function buildApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = newRouter();

  app.use("*", async (c, next) => {
    const t0 = performance.now();
    const given = c.req.header("x-request-id");
    const id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    c.set("requestId", id);
    await next();
    c.res.headers.set("x-request-id", id);
    if (!log.enabled("info")) return;
    log.info("request", {
      method: c.req.method,
      route: c.req.routePath,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - t0) * 100) / 100,
      request_id: id,
    });
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: BODY_LIMIT_BYTES,
      onError: (c) =>
        problemResponse(
          problem(413, `Request body is larger than ${BODY_LIMIT_BYTES} bytes`, {
            instance: c.req.path,
            request_id: c.get("requestId"),
          }),
        ),
    }),
  );

  app.onError((err, c) => {
    const p = errorToProblem(err, { instance: c.req.path, requestId: c.get("requestId") ?? "" });
    return problemResponse(p);
  });

  app.notFound((c) => notFoundOrNotAllowed(app, c));

  app.route("/", metaRoutes(deps));
  app.route("/", healthRoutes(deps));
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
  const ctx = { instance: path, request_id: c.get("requestId") };
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

const patterns = new Map<string, RegExp>();
function routePattern(path: string): RegExp {
  let re = patterns.get(path);
  if (!re) {
    const src = path.split("/").map((seg) =>
      seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("/");
    re = new RegExp(`^${src}/?$`);
    patterns.set(path, re);
  }
  return re;
}
