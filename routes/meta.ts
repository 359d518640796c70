/** `GET /` and `GET /api/v1/config/status`: the seed's service information. */
import { createRoute, z } from "@hono/zod-openapi";
import { OPEN, requires } from "./access.ts";
import { newRouter } from "./router.ts";
import type { AppDeps } from "./app.ts";

/** The version the seed's responses carry. */
export const SERVICE_VERSION = "1.0.0";

const RootInfo = z.object({
  service: z.string().openapi({ example: "Configuration Management Service" }),
  version: z.string().openapi({ example: SERVICE_VERSION }),
  status: z.string().openapi({ example: "running" }),
  description: z.string(),
}).openapi("ServiceInfo");

const ServiceStatus = z.object({
  service: z.string().openapi({ example: "config-service" }),
  version: z.string().openapi({ example: "v1" }),
  status: z.string().openapi({ example: "operational" }),
  features: z.array(z.string()),
}).openapi("ServiceStatus");

const FEATURES = [
  "Environment-specific configurations",
  "Service discovery",
  "Dynamic configuration updates",
  "Configuration audit logging",
  "Feature flags with Unleash",
];

export function metaRoutes(deps: AppDeps) {
  return newRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/",
        ...OPEN,
        tags: ["Service"],
        summary: "Service information",
        responses: {
          200: {
            description: "Service information",
            content: { "application/json": { schema: RootInfo } },
          },
        },
      }),
      (c) =>
        c.json({
          service: "Configuration Management Service",
          version: SERVICE_VERSION,
          status: "running",
          description: "Centralized configuration for microservices",
        }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/api/v1/config/status",
        ...requires(["config:read"]),
        tags: ["Service"],
        summary: "Configuration service status and features",
        responses: {
          200: {
            description: "Status",
            content: { "application/json": { schema: ServiceStatus } },
          },
        },
      }),
      (c) =>
        c.json({
          service: deps.settings.SERVICE_NAME,
          version: "v1",
          status: "operational",
          features: FEATURES,
        }, 200),
    );
}
