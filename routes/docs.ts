/**
 * `/openapi.json` generated from the zod route schemas, Swagger UI at `/docs` and ReDoc at
 * `/redoc`. Their assets come from the npm packages `swagger-ui-dist` and `redoc` and are
 * served by this service itself: our machines have no CDN.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Handler } from "hono";
import { OPEN } from "./access.ts";
import { newRouter } from "./router.ts";
import type { AppEnv } from "./router.ts";
import { SERVICE_VERSION } from "./meta.ts";

type Asset = { type: string; load: () => Promise<string> };

// Literal dynamic imports: loaded on first use, and still embedded by `deno compile`.
const ASSETS: Record<string, Asset> = {
  "/docs/swagger-ui.css": {
    type: "text/css; charset=utf-8",
    load: async () =>
      (await import("swagger-ui-dist/swagger-ui.css", { with: { type: "text" } })).default,
  },
  "/docs/swagger-ui-bundle.js": {
    type: "text/javascript; charset=utf-8",
    load: async () =>
      (await import("swagger-ui-dist/swagger-ui-bundle.js", { with: { type: "text" } }))
        .default,
  },
  "/redoc/redoc.standalone.js": {
    type: "text/javascript; charset=utf-8",
    load: async () =>
      (await import("redoc/bundles/redoc.standalone.js", { with: { type: "text" } })).default,
  },
};

const SWAGGER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>config-service API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script>
</body></html>`;

const REDOC_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>config-service API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc.standalone.js"></script></body></html>`;

export function docsRoutes(app: OpenAPIHono<AppEnv>) {
  const cache = new Map<string, string>();
  const r = newRouter();
  // Open to everyone, and declared so like every route (routes/access.ts).
  const page = (path: string, summary: string, handler: Handler<AppEnv>) => {
    r.openAPIRegistry.registerPath(createRoute({
      method: "get",
      path,
      ...OPEN,
      tags: ["Docs"],
      summary,
      responses: { 200: { description: summary } },
    }));
    r.get(path, handler);
  };
  page("/openapi.json", "This OpenAPI document", (c) =>
    c.json(app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "config-service",
        version: SERVICE_VERSION,
        description: "Centralized configuration, service discovery and feature flags. Errors are " +
          "application/problem+json (RFC 9457).",
      },
    })));
  page("/docs", "Swagger UI", (c) => c.html(SWAGGER_HTML));
  page("/redoc", "ReDoc", (c) => c.html(REDOC_HTML));
  for (const [path, asset] of Object.entries(ASSETS)) {
    page(path, "An asset of the documentation pages", async (c) => {
      let body = cache.get(path);
      if (body === undefined) {
        body = await asset.load();
        cache.set(path, body);
      }
      return c.body(body, 200, {
        "content-type": asset.type,
        "cache-control": "public, max-age=86400",
      });
    });
  }
  return r;
}
