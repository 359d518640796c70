/**
 * The one way routes are made: an OpenAPIHono whose validation failures become a
 * {@link ValidationError} naming every failing field (→ 400 problem+json).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import type { MiddlewareHandler } from "hono";
import { type FieldError, issueMessage, ValidationError } from "../lib/errors.ts";
import { duplicateKeys, inexactNumberErrors } from "../lib/json.ts";
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
    message: issueMessage(i),
  }));
}

/** `requestId` and `principal` (the API token's name, null when open) come from the fetch
 * wrapper of routes/app.ts. */
export type AppEnv = {
  Bindings: {
    requestId: string;
    principal: string | null;
    /** The client's address (Deno.serve's connection info), when there is one. */
    remoteAddr?: Deno.NetAddr;
  };
};

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

/**
 * Middleware for routes that store what a JSON body says, so nothing is changed on the way
 * without a word: a number that would not read back as written (`1e400` stored as null,
 * `12345678901234567890` as 12345678901234567000) or a member name repeated in one object
 * (`JSON.parse` keeps the last) is a 400 naming its path. Checked on the text before the
 * validator, which then parses it again from Hono's body cache (HonoRequest.json() always
 * re-parses the cached text). Text that is not JSON is left to the validator: the same 400
 * as without this check. Mount it by method and path (`r.on("POST", path, exactJson)`), so
 * no other route pays for it.
 */
export const exactJson: MiddlewareHandler<AppEnv> = async (c, next) => {
  // The media types Hono's json validator parses; for others it validates `{}`.
  const type = c.req.header("content-type")?.split(";")[0].trim() ?? "";
  if (/^application\/([\w.-]+\+)?json$/i.test(type)) {
    const text = await c.req.text();
    const errors = inexactNumberErrors(text);
    if (errors.length === 0) {
      const repeated = duplicateKeys(text);
      // The scan does not validate: only a body that parses has names to repeat.
      if (repeated.length > 0 && parses(text)) errors.push(...repeated);
    }
    if (errors.length > 0) throw new ValidationError(errors);
  }
  await next();
};

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
