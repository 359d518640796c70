/**
 * Service registry endpoints (spec 11–17) plus heartbeat. Handlers validate and translate;
 * the RegistryActor and HealthActor do the work.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requires } from "./access.ts";
import { exactJson, newRouter } from "./router.ts";
import type { RegistryClient } from "../actors/registry_client.ts";
import type { HealthClient } from "../actors/health_client.ts";
import type { Settings } from "../lib/settings.ts";
import { BackendUnavailableError } from "../lib/errors.ts";
import { jsonBody, jsonContent, problemResponses } from "./openapi.ts";
import { instanceView as view, normalizeMetadata } from "../lib/registry/model.ts";

export interface RegistryDeps {
  settings: Settings;
  registry: RegistryClient;
  health: HealthClient;
}

const Name = z.string().min(1).max(128).regex(
  /^[A-Za-z0-9._-]+$/,
  "must be 1–128 characters of A-Z a-z 0-9 . _ -",
);
const Url = z.string().min(1).max(2048).openapi({ example: "http://asr-service:8087" });

const Status = z.enum(["registered", "healthy", "unhealthy"]);
const Metadata = z.record(z.string(), z.string());
const Source = z.enum(["api", "zookeeper"]).openapi({
  description: "api: registered through this API; zookeeper: registered in ZooKeeper by " +
    "another client (Curator, Spring Cloud Zookeeper), health-checked, never modified by us",
});

/** An instance as `services` and `services/{name}` show it (instanceView). */
const InstanceView = z.object({
  instance_id: z.string(),
  service_url: z.string(),
  health_check_url: z.string(),
  status: Status,
  last_health_check: z.string().nullable(),
  last_check_latency_ms: z.number().nullable().openapi({
    description: "How long the last health check took, in milliseconds (0.1 ms steps): its " +
      "slowest endpoint, until the response headers or the failure (about HEALTH_CHECK_TIMEOUT " +
      "when it timed out); null before the first check",
    example: 12.3,
  }),
  metadata: Metadata,
  source: Source,
}).openapi("ServiceInstance");

/** An instance as `discover` shows it (discoverView): no check latency. */
const DiscoveredInstanceView = z.object({
  instance_id: z.string(),
  service_url: z.string(),
  health_check_url: z.string(),
  status: Status,
  last_health_check: z.string().nullable(),
  metadata: Metadata,
  source: Source,
}).openapi("DiscoveredInstance");

const ServiceView = z.object({
  service_name: z.string(),
  instances: z.array(InstanceView),
}).openapi("Service");

const DiscoveredServiceView = z.object({
  service_name: z.string(),
  instances: z.array(DiscoveredInstanceView),
}).openapi("DiscoveredService");

export function registryRoutes(deps: RegistryDeps) {
  const r = newRouter();
  // Metadata numbers are stored as strings: one that would not read back is refused first.
  r.on("POST", "/api/v1/registry/register", exactJson);
  if (!deps.settings.SERVICE_REGISTRY_ENABLED) {
    r.use("/api/v1/registry/*", () => {
      throw new BackendUnavailableError(
        "registry",
        "The service registry is disabled (SERVICE_REGISTRY_ENABLED=false)",
      );
    });
  }
  for (const add of [register, deregister, heartbeat, services, service, url, discover, checkNow]) {
    add(r, deps);
  }
  return r;
}

const DISCOVER_ROUTE = "/api/v1/registry/discover/:service_name";
const SERVICE_ROUTE = "/api/v1/registry/services/:service_name";
const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The service-answer fast path, called by the fetch wrapper before Hono once the request is
 * resolved (and authorized) to `route` on `path`: `discover/{name}` and `services/{name}`
 * whose answer the HTTP thread holds are answered here, synchronously, as the routes answer
 * them; anything else (a name the route would refuse, an answer not held) returns null and
 * takes the full route. None when the registry is disabled (its routes answer 503).
 */
export function fastRegistryGet(deps: Pick<RegistryDeps, "settings" | "registry">) {
  if (!deps.settings.SERVICE_REGISTRY_ENABLED) return null;
  const { registry } = deps;
  return (route: string | null, path: string): Response | null => {
    const healthyOnly = route === DISCOVER_ROUTE;
    if (!healthyOnly && route !== SERVICE_ROUTE) return null;
    const name = path.slice(path.lastIndexOf("/") + 1);
    if (!NAME.test(name)) return null;
    const body = registry.answerNear(name, healthyOnly);
    if (body === undefined) return null;
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  };
}

type Router = ReturnType<typeof newRouter>;
const Ref = z.object({ service_name: Name, instance_id: Name });
const ServiceParam = z.object({ service_name: Name });

/** `POST /api/v1/registry/register`: adds or updates an instance (idempotent). */
function register(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/registry/register",
      ...requires(["registry:write"]),
      tags: ["Registry"],
      summary: "Register (or update) a service instance",
      description: "Idempotent by (service_name, metadata.instance_id); 201 when new, 200 when " +
        "updated. Acknowledged once the record is durable and, with ZooKeeper, its ephemeral " +
        "znode exists. Optional `ttl_seconds` requires heartbeats.",
      request: jsonBody(
        z.object({
          service_name: Name,
          service_url: Url,
          health_check_url: Url.optional(),
          metadata: z.record(z.string(), z.unknown()).optional(),
          ttl_seconds: z.number().int().min(1).max(86_400).optional(),
        }).openapi("RegisterRequest"),
      ),
      responses: {
        201: jsonContent(
          z.object({
            instance_id: z.string(),
            service_name: z.string(),
            service_url: z.string(),
            status: z.string(),
          }),
          "Registered",
        ),
        200: { description: "Updated" },
        ...problemResponses(400, 409, 503),
      },
    }),
    async (c) => {
      const b = c.req.valid("json");
      const { instance, created } = await registry.register({
        input: {
          service_name: b.service_name,
          service_url: b.service_url,
          health_check_url: b.health_check_url,
          metadata: normalizeMetadata(b.metadata ?? {}),
          ttl_seconds: b.ttl_seconds ?? null,
        },
      });
      return c.json({
        instance_id: instance.instance_id,
        service_name: instance.service_name,
        service_url: instance.service_url,
        status: instance.status,
      }, created ? 201 : 200);
    },
  );
}

/** `POST /api/v1/registry/deregister`: removes an instance. */
function deregister(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/registry/deregister",
      ...requires(["registry:write"]),
      tags: ["Registry"],
      summary: "Deregister a service instance",
      description: "409 for an instance another client registered in ZooKeeper (source " +
        "`zookeeper`): config-service never modifies those.",
      request: jsonBody(Ref),
      responses: {
        200: jsonContent(Ref.extend({ status: z.literal("deregistered") }), "Deregistered"),
        ...problemResponses(400, 404, 409, 503),
      },
    }),
    async (c) => {
      const b = c.req.valid("json");
      await registry.deregister({ service: b.service_name, id: b.instance_id });
      return c.json({ ...b, status: "deregistered" as const }, 200);
    },
  );
}

/** `POST /api/v1/registry/heartbeat`: keeps a TTL instance alive. */
function heartbeat(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/registry/heartbeat",
      ...requires(["registry:write"]),
      tags: ["Registry"],
      summary: "Heartbeat of an instance registered with ttl_seconds",
      request: jsonBody(Ref),
      responses: {
        200: jsonContent(
          Ref.extend({ status: z.string(), last_heartbeat: z.string().nullable() }),
          "Recorded",
        ),
        ...problemResponses(400, 404, 409, 503),
      },
    }),
    async (c) => {
      const b = c.req.valid("json");
      const i = await registry.heartbeat({ service: b.service_name, id: b.instance_id });
      return c.json({ ...b, status: i.status, last_heartbeat: i.last_heartbeat }, 200);
    },
  );
}

/** `GET /api/v1/registry/services`: every service with its instances. */
function services(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/registry/services",
      ...requires(["registry:read"]),
      tags: ["Registry"],
      summary: "List registered services with their instances",
      responses: { 200: jsonContent(z.array(ServiceView), "Services"), ...problemResponses(503) },
    }),
    async (c) => {
      const groups = new Map<string, ReturnType<typeof view>[]>();
      for (const i of await registry.all()) {
        const g = groups.get(i.service_name) ?? [];
        g.push(view(i));
        groups.set(i.service_name, g);
      }
      const out = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))
        .map(([service_name, instances]) => ({ service_name, instances }));
      return c.json(out, 200);
    },
  );
}

/** `GET /api/v1/registry/services/{service_name}`: all instances of a service. */
function service(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/registry/services/{service_name}",
      ...requires(["registry:read"]),
      tags: ["Registry"],
      summary: "All instances of a service",
      request: { params: ServiceParam },
      responses: { 200: jsonContent(ServiceView, "Instances"), ...problemResponses(400, 404, 503) },
    }),
    async (c) => {
      const { service_name } = c.req.valid("param");
      const body = registry.answerNear(service_name, false) ??
        await registry.answer({ service: service_name, healthy_only: false });
      return c.body(body, 200, { "content-type": "application/json" }) as unknown as never;
    },
  );
}

/** `GET /api/v1/registry/services/{service_name}/url`: one healthy instance, load balanced. */
function url(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/registry/services/{service_name}/url",
      ...requires(["registry:read"]),
      tags: ["Registry"],
      summary: "A healthy instance's URL, load balanced",
      description: "Round robin over healthy instances (weighted by metadata.weight when " +
        "present); `strategy` = round_robin | random | weighted. 404 unknown service, 503 " +
        "none healthy.",
      request: {
        params: ServiceParam,
        query: z.object({ strategy: z.enum(["round_robin", "random", "weighted"]).optional() }),
      },
      responses: {
        200: jsonContent(
          z.object({ service_name: z.string(), url: z.string(), instance_id: z.string() }),
          "Chosen",
        ),
        ...problemResponses(400, 404, 503),
      },
    }),
    async (c) => {
      const { service_name } = c.req.valid("param");
      const { strategy } = c.req.valid("query");
      const i = await registry.pick({ service: service_name, strategy });
      return c.json({ service_name, url: i.service_url, instance_id: i.instance_id }, 200);
    },
  );
}

/** `GET /api/v1/registry/discover/{service_name}`: the healthy instances. */
function discover(r: Router, d: RegistryDeps): void {
  const { registry } = d;
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/registry/discover/{service_name}",
      ...requires(["registry:read"]),
      tags: ["Registry"],
      summary: "Healthy instances of a service",
      request: { params: ServiceParam },
      responses: {
        200: jsonContent(DiscoveredServiceView, "Healthy instances"),
        ...problemResponses(400, 404, 503),
      },
    }),
    async (c) => {
      const { service_name } = c.req.valid("param");
      const body = registry.answerNear(service_name, true) ??
        await registry.answer({ service: service_name, healthy_only: true });
      return c.body(body, 200, { "content-type": "application/json" }) as unknown as never;
    },
  );
}

/** `POST /api/v1/registry/services/{service_name}/health`: checks the instances now. */
function checkNow(r: Router, d: RegistryDeps): void {
  const { registry, health } = d;
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/registry/services/{service_name}/health",
      ...requires(["registry:write"]),
      tags: ["Registry"],
      summary: "Check a service's instances now",
      request: { params: ServiceParam },
      responses: {
        200: jsonContent(
          z.object({
            service_name: z.string(),
            instances_checked: z.number().int(),
            healthy_instances: z.number().int(),
            unhealthy_instances: z.number().int(),
          }),
          "Checked",
        ),
        ...problemResponses(400, 404, 503),
      },
    }),
    async (c) => {
      const { service_name } = c.req.valid("param");
      const list = await registry.instances({ service: service_name });
      const outcomes = await health.checkNow({
        targets: list.map((i) => ({ service: i.service_name, id: i.instance_id })),
      });
      // Recorded before answering, so a read right after sees these outcomes.
      await Promise.all(outcomes.map((o) => registry.healthResult(o)));
      const healthy = outcomes.filter((o) => o.healthy).length;
      return c.json({
        service_name,
        instances_checked: outcomes.length,
        healthy_instances: healthy,
        unhealthy_instances: outcomes.length - healthy,
      }, 200);
    },
  );
}
