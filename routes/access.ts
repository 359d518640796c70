/**
 * Who may call each route. Every route declares its access where it is defined, inside its
 * `createRoute({...})` beside the rest of its OpenAPI definition, by spreading {@link OPEN}
 * or {@link requires}: the declaration is OpenAPI `security`, so `/openapi.json` documents
 * it, and {@link accessTable} reads it back from the router's OpenAPI registry. That table
 * is the one answer to "which scope does this request need": the fetch wrapper looks up the
 * route the router matched on the path the handler sees ({@link requestPath}), never a list
 * of URL patterns, and a route that declares nothing is denied.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { getPath, getQueryParam } from "hono/utils/url";
import type { Scope } from "../lib/auth.ts";
import type { AppEnv } from "./router.ts";

/** What a route needs: nothing (`open`), or every scope of `scopes` (and of `reveal` too
 * when the query asks `reveal=true`). `admin` holds every scope. */
export interface Access {
  open: boolean;
  scopes: readonly Scope[];
  reveal: readonly Scope[];
}

/** The security scheme the declarations name. */
export const BEARER = "bearer";
const REVEAL_EXTENSION = "x-reveal-scopes";

/** Spread into `createRoute({...})`: anyone may call the route, with or without a token. */
export const OPEN = { security: [] as Record<string, string[]>[] };

/**
 * Spread into `createRoute({...})`: the route needs a token with every scope of `scopes`;
 * `reveal` adds scopes for a request whose query has `reveal=true` (read with
 * {@link revealRequested}, as the handler reads it).
 */
export function requires(scopes: Scope[], opts: { reveal?: Scope[] } = {}) {
  return {
    security: [{ [BEARER]: scopes }],
    ...(opts.reveal ? { [REVEAL_EXTENSION]: opts.reveal } : {}),
  };
}

/** Denied to all but `admin`: what an undeclared route gets. */
export const UNDECLARED: Access = { open: false, scopes: ["admin"], reveal: [] };

/**
 * `?reveal=true`, read from the request URL's own query with Hono's query parser (the
 * first `reveal` wins, values percent-decoded): the handler and the authorization call
 * this one function.
 */
export function revealRequested(url: string): boolean {
  return getQueryParam(url, "reveal") === "true";
}

/** The scopes a request to a route with `access` needs; null when it is open. */
export function scopesFor(access: Access, url: string): readonly Scope[] | null {
  if (access.open) return null;
  if (access.reveal.length > 0 && revealRequested(url)) {
    return [...access.scopes, ...access.reveal];
  }
  return access.scopes;
}

/** Declarations by `METHOD /hono/:path`. */
export type AccessTable = Map<string, Access>;

/** `GET /api/v1/config/:key`: how the table is keyed (HEAD is served by GET). */
export function accessKey(method: string, honoPath: string): string {
  return `${method === "HEAD" ? "GET" : method.toUpperCase()} ${honoPath}`;
}

interface RouteDefinition {
  type: string;
  route?: {
    method: string;
    path: string;
    security?: Record<string, string[]>[];
    [REVEAL_EXTENSION]?: Scope[];
  };
}

/**
 * Reads every route's declaration from `app`'s OpenAPI registry, and checks that each route
 * the router serves has one.
 * @throws {Error} naming a route that declares no access, or declares it twice differently.
 */
export function accessTable(app: OpenAPIHono<AppEnv>): AccessTable {
  app.openAPIRegistry.registerComponent("securitySchemes", BEARER, {
    type: "http",
    scheme: "bearer",
    description: "An API token (API_TOKENS, API_TOKENS_FILE); each operation names the scopes " +
      "it needs, `admin` has them all.",
  });
  const table: AccessTable = new Map();
  for (const d of app.openAPIRegistry.definitions as unknown as RouteDefinition[]) {
    if (d.type !== "route" || !d.route) continue;
    const { method, path, security } = d.route;
    const key = accessKey(method, path.replace(/\{([^}]+)\}/g, ":$1"));
    if (security === undefined) throw new Error(`route ${key} declares no access`);
    const access: Access = security.length === 0 ? { open: true, scopes: [], reveal: [] } : {
      open: false,
      scopes: security.flatMap((s) => s[BEARER] ?? []) as Scope[],
      reveal: d.route[REVEAL_EXTENSION] ?? [],
    };
    table.set(key, access);
  }
  for (const r of app.routes) {
    if (r.method === "ALL" || r.path === "*" || r.path.endsWith("/*")) continue;
    if (!table.has(accessKey(r.method, r.path))) {
      throw new Error(`route ${accessKey(r.method, r.path)} declares no access`);
    }
  }
  return table;
}

/**
 * The path a request is routed and handled on: Hono's own `getPath` (`decodeURI`, so `%2F`
 * stays encoded inside a segment), with empty and `.` segments
 * dropped and `..` applied. So `/%61pi//v1/./config/` is `/api/v1/config`: one route, one
 * declaration, however it is spelled. Deno hands the request line's path over as sent.
 */
export function requestPath(url: string): string {
  // No path at all (`CONNECT host:port`): nothing any route serves.
  if (url.indexOf("/", url.indexOf(":") + 4) < 0) return "";
  const path = getPath({ url } as Request);
  // Nothing to fold: no `//`, no segment starting with `.`, no trailing `/`.
  if (!/\/[/.]|.\/$/.test(path)) return path;
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}
