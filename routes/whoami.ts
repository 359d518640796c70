/**
 * `GET /api/v1/auth/whoami`: the caller's token as the service sees it (name, scopes, bound
 * environment), like Consul's `/v1/acl/token/self`. Any valid token may ask; with no tokens
 * configured the service is open and says so. The web console signs in through it, so a
 * sign-in is one more authenticated API request (failure limits included).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requires } from "./access.ts";
import { newRouter } from "./router.ts";
import { jsonContent, problemResponses } from "./openapi.ts";
import { type ApiToken, SCOPES } from "../lib/auth.ts";

export const Whoami = z.object({
  open: z.boolean().openapi({ description: "true when no API tokens are configured" }),
  name: z.string().nullable(),
  scopes: z.array(z.enum(SCOPES)),
  environment: z.string().nullable(),
}).openapi("Whoami");

export function whoamiRoutes(tokens: ApiToken[]) {
  const byName = new Map(tokens.map((t) => [t.name, t]));
  const r = newRouter();
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/auth/whoami",
      ...requires([]),
      tags: ["Auth"],
      summary: "The caller's token: name, scopes, bound environment",
      responses: { 200: jsonContent(Whoami, "The caller"), ...problemResponses(401) },
    }),
    (c) => {
      const t = c.env.principal === null ? undefined : byName.get(c.env.principal);
      if (!t) {
        return c.json({ open: true, name: null, scopes: [...SCOPES], environment: null }, 200);
      }
      return c.json({
        open: false,
        name: t.name,
        scopes: [...t.scopes],
        environment: t.environment ?? null,
      }, 200);
    },
  );
  return r;
}
