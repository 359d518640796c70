/**
 * The one way routes are made: an OpenAPIHono whose validation failures become a
 * {@link ValidationError} naming every failing field (→ 400 problem+json).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import { type FieldError, ValidationError } from "../lib/errors.ts";
import { requestPath } from "./access.ts";

/** Hono's name for a validation target → where the field is, in problem documents. */
const WHERE: Record<string, string> = {
  json: "body",
  form: "body",
  query: "query",
  param: "path",
  header: "header",
  cookie: "cookie",
};

/** Flattens a ZodError into one entry per failing field. */
export function fieldErrors(error: ZodError, target: string): FieldError[] {
  const where = WHERE[target] ?? target;
  return error.issues.map((i) => ({
    field: i.path.length > 0 ? i.path.join(".") : where,
    in: where,
    message: i.message,
  }));
}

/** `requestId` and `principal` (the API token's name, null when open) come from the fetch
 * wrapper of routes/app.ts. */
export type AppEnv = { Bindings: { requestId: string; principal: string | null } };

export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    // Routing, handlers and authorization all read this one spelling of the path.
    getPath: (req) => requestPath(req.url),
    defaultHook: (result) => {
      if (!result.success) {
        throw new ValidationError(fieldErrors(result.error, result.target));
      }
    },
  });
}

/** Largest accepted request body, in bytes. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * A request URL's path and its query (with the `?`, or ""), by string search: cheaper than
 * `new URL()` on paths every request takes.
 */
export function splitUrl(url: string): [path: string, search: string] {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const q = url.indexOf("?", start);
  return q < 0 ? [url.slice(start), ""] : [url.slice(start, q), url.slice(q)];
}
