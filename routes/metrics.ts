/**
 * `GET /metrics`: Prometheus text format. Request and actor-call histograms and health-check
 * counts are kept on the HTTP thread; backend states, actor queues and the actors' own
 * counters (cache, outbox backlog, flag evaluations by reason) are read at scrape time.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requires } from "./access.ts";
import { newRouter } from "./router.ts";
import type { ActorHandle } from "./actors.ts";
import type { ConfigClient } from "../actors/config_client.ts";
import type { FlagClient } from "../actors/flags_client.ts";
import type { BackendStatus } from "../actors/protocol.ts";
import { type Collected, metrics, renderCollected } from "../lib/metrics.ts";

/** An actor client that answers the common `metrics` call. */
interface Measured extends ActorHandle {
  call(msg: { type: "metrics" }, timeoutMs?: number): Promise<Collected[]>;
}

export interface MetricsDeps {
  actors: Record<string, ActorHandle>;
  config?: ConfigClient;
  /** Its evaluation counts are kept on the HTTP thread until handed over; a scrape hands them. */
  flags?: FlagClient;
}

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsRoutes(deps: MetricsDeps) {
  const r = newRouter();
  r.openAPIRegistry.registerPath(createRoute({
    method: "get",
    path: "/metrics",
    ...requires(["admin"]),
    tags: ["Meta"],
    summary: "Prometheus metrics",
    description: "Text format 0.0.4. Needs the `admin` scope when API tokens are configured.",
    responses: {
      200: { description: "Metrics", content: { [CONTENT_TYPE]: { schema: z.string() } } },
    },
  }));
  r.get("/metrics", async () => {
    const actors = Object.values(deps.actors);
    const backends = new Map<string, BackendStatus>();
    for (const a of actors) for (const b of a.backends) backends.set(b.name, b);
    const families: Collected[] = [
      {
        name: "backend_up",
        help:
          "1 when the backend answered its last probe, 0 when down (disabled and not yet probed ones are left out)",
        type: "gauge",
        // Disabled backends and ones whose first probe has not completed have no sample.
        samples: [...backends.values()].filter((b) =>
          b.status !== "disabled" && b.status !== "unknown"
        ).map((b) => ({
          labels: { backend: b.name, kind: b.kind },
          value: b.status === "up" ? 1 : 0,
        })),
      },
      {
        name: "actor_up",
        help: "1 when the actor's worker is running and initialised",
        type: "gauge",
        samples: actors.map((a) => ({ labels: { actor: a.name }, value: a.ready ? 1 : 0 })),
      },
      {
        name: "actor_queue_depth",
        help: "Calls sent to the actor and not answered yet",
        type: "gauge",
        samples: actors.map((a) => ({ labels: { actor: a.name }, value: a.queueDepth })),
      },
      {
        name: "actor_restarts_total",
        help: "Times the actor's worker was restarted after a crash",
        type: "counter",
        samples: actors.map((a) => ({ labels: { actor: a.name }, value: a.restarts })),
      },
    ];
    if (deps.config) {
      families.push({
        name: "config_near_cache_lookups_total",
        help: "Configuration reads answered on the HTTP thread (hit) or sent to the ConfigActor",
        type: "counter",
        samples: [
          { labels: { result: "hit" }, value: deps.config.nearHits },
          { labels: { result: "miss" }, value: deps.config.nearMisses },
        ],
      });
    }
    // Sent before the `metrics` calls, in the same batch: the actor counts them first.
    deps.flags?.flushUsage();
    const own = await Promise.all(
      actors.filter((a): a is Measured => "call" in a && a.ready).map((a) =>
        a.call({ type: "metrics" }, 2_000).catch(() => [] as Collected[])
      ),
    );
    const text = metrics.render() + [...families, ...own.flat()].map(renderCollected)
      .join("");
    return new Response(text, { headers: { "content-type": CONTENT_TYPE } });
  });
  return r;
}
