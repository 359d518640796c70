/**
 * `/health` (from the backend states the actors last reported: no actor hop), `/live`
 * (the HTTP front answers) and `/ready` (every actor answers a round trip).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { OPEN } from "./access.ts";
import { newRouter } from "./router.ts";
import type { ActorHandle } from "./actors.ts";
import { errorToProblem, problemResponse } from "../lib/problem.ts";
import { coalesce } from "../lib/async.ts";
import type { AppDeps } from "./app.ts";
import { SERVICE_VERSION } from "./meta.ts";
import type { BackendStatus } from "../actors/protocol.ts";

const Backend = z.object({
  kind: z.string().openapi({ example: "postgres" }),
  status: z.enum(["up", "down", "disabled", "unknown"]),
  latency_ms: z.number().optional(),
  error: z.string().optional(),
  checked_at: z.string().optional(),
  role: z.enum(["leader", "follower"]).optional(),
}).openapi("BackendHealth");

const ActorState = z.object({
  ready: z.boolean(),
  restarts: z.number().int(),
  queue_depth: z.number().int(),
}).openapi("ActorState");

const Health = z.object({
  status: z.enum(["healthy", "degraded", "unhealthy"]),
  service: z.string().openapi({ example: "config-service" }),
  version: z.string().openapi({ example: SERVICE_VERSION }),
  instance_id: z.string(),
  uptime_seconds: z.number(),
  backends: z.record(z.string(), Backend),
  actors: z.record(z.string(), ActorState),
}).openapi("Health");

const Ready = z.object({
  status: z.literal("ready"),
  actors: z.record(z.string(), z.literal("ok")),
}).openapi("Ready");

/**
 * `/ready`'s round trips and answer. Every actor is pinged once per round; a request joins
 * the next round that starts after it arrived (never one under way), so each 200 proves
 * every actor answered after the request came in. The answer's text is the same every time.
 */
export function readiness(actors: ActorHandle[]) {
  const states: Record<string, "ok"> = {};
  for (const a of actors) states[a.name] = "ok";
  const body = JSON.stringify({ status: "ready", actors: states });
  // One shared promise per wave of requests instead of each request's own Promise.all.
  const round = coalesce(() => Promise.all(actors.map((a) => a.ping())).then(() => {}));
  return {
    body,
    round,
    /** The fetch wrapper's answer to a request routed to `GET /ready`, skipping Hono. */
    fast(requestId: string): Promise<Response> {
      return round().then(
        () =>
          new Response(body, {
            headers: { "content-type": "application/json", "x-request-id": requestId },
          }),
        (err) =>
          problemResponse(errorToProblem(err, { instance: "/ready", requestId }), {
            "x-request-id": requestId,
          }),
      );
    },
  };
}

/** Backends the service cannot serve without; any other one down only degrades it. */
const ESSENTIAL = new Set(["storage"]);

export type Readiness = ReturnType<typeof readiness>;

export function healthRoutes(deps: AppDeps, ready: Readiness) {
  const actors = Object.values(deps.actors);
  return newRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/health",
        ...OPEN,
        tags: ["Health"],
        summary: "Service health with the state of each backend",
        description:
          "200 while the service can serve (`healthy`, or `degraded` when an optional backend " +
          "is down); 503 `unhealthy` when storage or an actor is down.",
        responses: {
          200: { description: "Serving", content: { "application/json": { schema: Health } } },
          503: { description: "Not serving", content: { "application/json": { schema: Health } } },
        },
      }),
      (c) => c.json(...report(deps, actors)),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/live",
        ...OPEN,
        tags: ["Health"],
        summary: "Liveness: the HTTP front answers",
        responses: {
          200: {
            description: "Alive",
            content: { "application/json": { schema: z.object({ status: z.literal("alive") }) } },
          },
        },
      }),
      (c) => c.json({ status: "alive" as const }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/ready",
        ...OPEN,
        tags: ["Health"],
        summary: "Readiness: every actor answers a round trip",
        responses: {
          200: { description: "Ready", content: { "application/json": { schema: Ready } } },
          503: { description: "An actor is down (problem+json)" },
          504: { description: "An actor did not answer in time (problem+json)" },
        },
      }),
      async (c) => {
        await ready.round();
        return c.body(ready.body, 200, { "content-type": "application/json" });
      },
    );
}

/** `/health`'s document and status: 503 when storage or an actor is down. */
function report(deps: AppDeps, actors: ActorHandle[]): [z.infer<typeof Health>, 200 | 503] {
  const backends: Record<string, z.infer<typeof Backend>> = {};
  const actorStates: Record<string, z.infer<typeof ActorState>> = {};
  let unhealthy = false;
  let degraded = false;
  for (const a of actors) {
    actorStates[a.name] = {
      ready: a.ready,
      restarts: a.restarts,
      queue_depth: a.queueDepth,
    };
    if (!a.ready) unhealthy = true;
    for (const b of a.backends) {
      backends[b.name] = view(b);
      if (b.status !== "down") continue;
      if (ESSENTIAL.has(b.name)) unhealthy = true;
      else degraded = true;
    }
  }
  const status: z.infer<typeof Health>["status"] = unhealthy
    ? "unhealthy"
    : degraded
    ? "degraded"
    : "healthy";
  const body: z.infer<typeof Health> = {
    status,
    service: deps.settings.SERVICE_NAME,
    version: SERVICE_VERSION,
    instance_id: deps.settings.SERVICE_INSTANCE_ID,
    uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
    backends,
    actors: actorStates,
  };
  return [body, unhealthy ? 503 : 200];
}

function view(b: BackendStatus) {
  const { name: _name, ...rest } = b;
  return rest;
}
