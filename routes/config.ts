/**
 * Configuration endpoints (spec 4–10) plus rollback, watch (SSE) and Consul-style long
 * polling. Handlers validate and translate; the ConfigActor does the work.
 */
import { requires, revealRequested } from "./access.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { exactJson, fieldErrors, newRouter } from "./router.ts";
import type { AppEnv } from "./router.ts";
import type { ConfigClient } from "../actors/config_client.ts";
import type { GetReply } from "../actors/config_protocol.ts";
import type { Settings } from "../lib/settings.ts";
import {
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  PreconditionFailedError,
  ValidationError,
} from "../lib/errors.ts";
import { sseFrame, type WatchFilter, type WatchHub } from "../lib/config/watch_hub.ts";
import { jsonContent, problemResponses } from "./openapi.ts";
import { errorToProblem, problemResponse } from "../lib/problem.ts";
import type { EntryId } from "../lib/config/model.ts";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../lib/json.ts";

export interface ConfigDeps {
  settings: Settings;
  config: ConfigClient;
  hub: WatchHub;
  /** Validated GET URLs, shared with {@link fastConfigGet}. */
  getMemo: GetMemo;
}

/**
 * Each validated `GET /api/v1/config/{key}` URL (raw path + query) and what it addresses,
 * bounded: hot clients repeat the same few URLs, so zod runs once per distinct URL.
 */
export type GetMemo = Map<string, { entryId: EntryId; reveal: boolean }>;
const GET_MEMO_MAX = 1_000;

/**
 * The cached-read fast path, called by the fetch wrapper before Hono: a GET whose URL was
 * validated before (so it is this route) and whose answer the near cache holds is answered
 * here, synchronously; anything else returns null and takes the full route.
 */
export function fastConfigGet(config: ConfigClient, memo: GetMemo) {
  return (req: Request, requestId: string): Response | null => {
    const m = memo.get(req.url);
    if (m === undefined || m.reveal) return null;
    const near = config.getNear(m.entryId);
    if (near === undefined) return null;
    return getResponse(near, req.headers.get("if-none-match") ?? undefined, requestId);
  };
}

/** Keys: 1–256 characters of `[A-Za-z0-9._:/-]` (a `/` travels as %2F in paths). */
export const KEY_PATTERN = /^[A-Za-z0-9._:/-]{1,256}$/;
const SERVICE_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const USER_PATTERN = /^[\x21-\x7e][\x20-\x7e]{0,127}$/;
/** SSE heartbeat comment interval, ms. */
const HEARTBEAT_MS = 15_000;
/** Frames a watcher may have unread before it is dropped as too slow. */
const SLOW_WATCHER_FRAMES = 1_000;
const MAX_WAIT_MS = 300_000;

/** Keys a GET could not address: path segments of dots, and the names of fixed routes. */
const RESERVED_KEYS = /^(\.+|status|watch)$/;
export function keyProblem(key: string): string | null {
  if (!KEY_PATTERN.test(key)) return "must be 1–256 characters of A-Z a-z 0-9 . _ : / -";
  if (RESERVED_KEYS.test(key)) return "is reserved (dots only, status and watch are routes)";
  return null;
}
const Key = z.string().superRefine((k, ctx) => {
  const p = keyProblem(k);
  if (p) ctx.addIssue({ code: "custom", message: p });
}).openapi({ example: "model_path", pattern: KEY_PATTERN.source });
const ServiceName = z.string().regex(
  SERVICE_PATTERN,
  "must be 1–128 characters of A-Z a-z 0-9 . _ -",
)
  .openapi({ example: "asr-service" });
const Description = z.string().max(1024).nullable();
const Value = z.unknown().refine((v) => v !== undefined, "is required").openapi({
  description: "Any JSON value",
  example: "/models/asr",
});

const Entry = z.object({
  key: z.string(),
  value: z.unknown(),
  environment: z.string(),
  service_name: z.string().nullable(),
  description: z.string().nullable(),
  secret: z.boolean(),
  version: z.number().int(),
  scope: z.enum(["service", "global"]).optional(),
  created_at: z.string(),
  updated_at: z.string(),
  updated_by: z.string(),
}).openapi("ConfigEntry");

const HistoryItem = z.object({
  key: z.string(),
  value: z.unknown(),
  environment: z.string(),
  service_name: z.string().nullable(),
  version: z.number().int(),
  change_type: z.enum(["created", "updated", "deleted", "rolled_back"]),
  description: z.string().nullable(),
  secret: z.boolean(),
  updated_at: z.string(),
  updated_by: z.string(),
}).openapi("ConfigHistoryItem");

export function configRoutes(deps: ConfigDeps) {
  const x = context(deps);
  const r = newRouter();
  // By method and path, before their routes: GET /api/v1/config/{key} stays one synchronous
  // handler, and no other route pays for the check.
  r.on("POST", "/api/v1/config", exactJson);
  r.on("PUT", "/api/v1/config/:key", exactJson);
  for (const add of [watch, bulk, list, create, getEntry, update, remove, history, rollback]) {
    add(r, x);
  }
  return r;
}

type Router = ReturnType<typeof newRouter>;

/** What the configuration routes share: their deps and the schemas the settings shape. */
interface Ctx extends ConfigDeps {
  Environment: z.ZodType<string>;
  ScopeQuery: z.ZodObject<{
    environment: z.ZodType<string>;
    service_name: z.ZodOptional<typeof ServiceName>;
  }>;
  Paging: (def: number, max: number) => {
    limit: z.ZodDefault<z.ZodCoercedNumber<unknown>>;
    offset: z.ZodDefault<z.ZodCoercedNumber<unknown>>;
  };
  /** A value as stored JSON text; throws a 400 (too deep) or 413 (too large) naming `value`. */
  valueText: (value: unknown) => string;
}

function context(deps: ConfigDeps): Ctx {
  const { settings } = deps;
  const envs = settings.SUPPORTED_ENVIRONMENTS;
  const Environment = z.string().refine((e) => envs.includes(e), {
    message: `must be one of ${envs.join(", ")}`,
  }).openapi({ example: settings.DEFAULT_ENVIRONMENT });
  const maxValue = settings.CONFIG_MAX_VALUE_BYTES;
  return {
    ...deps,
    Environment,
    ScopeQuery: z.object({ environment: Environment, service_name: ServiceName.optional() }),
    Paging: (def, max) => ({
      limit: z.coerce.number().int().min(1).max(max).default(def),
      offset: z.coerce.number().int().min(0).max(1_000_000_000).default(0),
    }),
    valueText: (value) => {
      // Before stringifying: a value nested some ten thousand deep overflowed JSON.stringify
      // (500) or, shallower, the structured clone of the ConfigActor's reply, which crashed
      // the worker after the write had committed.
      if (nestedDeeperThan(value)) {
        throw new ValidationError([{
          field: "value",
          in: "body",
          message: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
        }]);
      }
      const text = JSON.stringify(value);
      if (new TextEncoder().encode(text).length > maxValue) {
        throw new PayloadTooLargeError([{
          field: "value",
          in: "body",
          message: `is larger than CONFIG_MAX_VALUE_BYTES (${maxValue} bytes as JSON)`,
        }]);
      }
      return text;
    },
  };
}

const KeyParam = z.object({ key: Key });

const entryId = (key: string, environment: string, service?: string | null): EntryId => ({
  environment,
  service: service ?? "",
  key,
});

// With tokens, the fetch wrapper has already checked `secrets:read` for `?reveal=true`.
function refuseReveal(c: Context<AppEnv>): void {
  if (c.env.principal === null) {
    throw new ForbiddenError(
      "Revealing secret values needs a token with the secrets:read scope, and no API " +
        "tokens are configured (API_TOKENS, API_TOKENS_FILE)",
    );
  }
}

/** The body of an update: a create's without `key`. */
const writeBody = (x: Ctx) =>
  z.object({
    value: Value,
    environment: x.Environment,
    service_name: ServiceName.nullable().optional(),
    description: Description.optional(),
    secret: z.boolean().optional().openapi({ example: false }),
  }).openapi("ConfigUpdate");

/** `GET /api/v1/config/watch`: Server-Sent Events of a scope's changes. */
function watch(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/config/watch",
      ...requires(["config:read"]),
      tags: ["Configuration"],
      summary: "Watch changes (Server-Sent Events)",
      description: "Events `created`, `updated`, `deleted`, `rolled_back`; `id` is the change " +
        "sequence; send `Last-Event-ID` to resume without gaps. A comment every 15 s.",
      request: { query: x.ScopeQuery },
      responses: {
        200: { description: "text/event-stream" },
        ...problemResponses(400),
      },
    }),
    (c) => {
      const q = c.req.valid("query");
      const filter: WatchFilter = { environment: q.environment, service: q.service_name };
      const lastHeader = c.req.header("last-event-id") ?? c.req.query("last_event_id");
      let after: number | undefined;
      if (lastHeader !== undefined) {
        after = Number(lastHeader);
        if (!Number.isInteger(after) || after < 0) {
          throw new ValidationError([{
            field: "Last-Event-ID",
            in: "header",
            message: "must be a change sequence number",
          }]);
        }
      }
      // HEAD: the headers only. Hono answers HEAD with the GET handler and drops its body
      // without cancelling it, which left a subscribed watcher behind for every HEAD.
      if (c.req.method === "HEAD") return c.body(null, 200, SSE_HEADERS);
      return watchStream(c, filter, after, x.config, x.hub);
    },
  );
}

/** `POST /api/v1/config/bulk`: several values at once, as a flat map. */
function bulk(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/config/bulk",
      ...requires(["config:read"]),
      tags: ["Configuration"],
      summary: "Get several values at once",
      description: "A flat key → value map; service scope first, then global; missing keys " +
        "are omitted.",
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                keys: z.array(Key).min(1).max(1000),
                environment: x.Environment,
                service_name: ServiceName.nullable().optional(),
              }),
            },
          },
        },
      },
      responses: {
        200: jsonContent(z.record(z.string(), z.unknown()), "Values by key"),
        ...problemResponses(400, 503),
      },
    }),
    async (c) => {
      const b = c.req.valid("json");
      const { body, stale } = await x.config.bulk({
        environment: b.environment,
        service: b.service_name ?? "",
        keys: [...new Set(b.keys)],
      }, c.req.raw.signal);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (stale) headers["x-config-stale"] = "true";
      return c.body(body, 200, headers) as unknown as never;
    },
  );
}

/** `GET /api/v1/config`: entries by filter, or a Consul-style blocking query with `index`. */
function list(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/config",
      ...requires(["config:read"]),
      tags: ["Configuration"],
      summary: "List configurations",
      description: "Filters: environment, service_name (empty: the global scope only; " +
        "absent: every scope), `keys[]` (or repeated `keys`), `prefix` of the keys. With " +
        "`index` (from `X-Config-Index`) the request waits up to `wait` (e.g. `30s`, max 5m) " +
        "for a change in that scope, like Consul's blocking queries.",
      request: {
        query: z.object({
          environment: x.Environment.optional(),
          service_name: z.union([z.literal(""), ServiceName]).optional(),
          prefix: z.string().regex(
            /^[A-Za-z0-9._:/-]{1,256}$/,
            "must be 1–256 characters of A-Z a-z 0-9 . _ : / -",
          )
            .optional().openapi({
              description: "Only keys starting with this (as Consul's `?recurse` on a prefix)",
            }),
          ...x.Paging(1000, 10_000),
          index: z.coerce.number().int().min(0).optional(),
          wait: z.string().regex(/^\d+(ms|s|m)?$/, "must be a duration like 30s, 500ms or 2m")
            .optional(),
        }),
      },
      responses: {
        200: jsonContent(z.array(Entry), "Entries"),
        ...problemResponses(400, 503),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const keys = [...(c.req.queries("keys[]") ?? []), ...(c.req.queries("keys") ?? [])];
      const bad = keys.find((k) => keyProblem(k) !== null);
      if (bad !== undefined) {
        throw new ValidationError([{ field: "keys", in: "query", message: `invalid key ${bad}` }]);
      }
      if (q.index !== undefined) {
        if (!q.environment) {
          throw new ValidationError([{
            field: "environment",
            in: "query",
            message: "is required with index",
          }]);
        }
        const filter: WatchFilter = { environment: q.environment, service: q.service_name };
        await x.hub.wait(
          filter,
          q.index,
          Math.min(parseWait(q.wait ?? "30s"), MAX_WAIT_MS),
          async () =>
            (await x.config.changes({
              after: q.index!,
              environment: filter.environment,
              service: filter.service,
              limit: 1,
            }, c.req.raw.signal)).length > 0,
          c.req.raw.signal,
        );
      }
      // The request's signal: a client that hangs up (also during the wait) costs no list.
      const res = await x.config.list({
        environment: q.environment,
        service: q.service_name,
        keys: keys.length ? keys : undefined,
        prefix: q.prefix,
        limit: q.limit,
        offset: q.offset,
      }, c.req.raw.signal);
      // The client's index as of the answer: past every write acknowledged before it.
      c.header("X-Config-Index", String(res.index));
      // The actor sends the array as JSON text already.
      return c.body(res.body, 200, { "content-type": "application/json" }) as unknown as never;
    },
  );
}

/** `POST /api/v1/config`: a new entry (409 when it exists). */
function create(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/config",
      ...requires(["config:write"]),
      tags: ["Configuration"],
      summary: "Create a configuration",
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                key: Key,
                value: Value,
                environment: x.Environment,
                service_name: ServiceName.nullable().optional(),
                description: Description.optional(),
                secret: z.boolean().optional().openapi({ example: false }),
              }).openapi("ConfigCreate"),
            },
          },
        },
      },
      responses: {
        201: jsonContent(Entry, "Created"),
        ...problemResponses(400, 409, 413, 503),
      },
    }),
    async (c) => {
      const b = c.req.valid("json");
      const res = await x.config.create({
        id: entryId(b.key, b.environment, b.service_name),
        value: x.valueText(b.value),
        secret: b.secret ?? false,
        description: b.description ?? null,
        by: principal(c),
      });
      c.header("ETag", res.etag);
      return c.json(res.entry as z.infer<typeof Entry>, 201);
    },
  );
}

/** `GET /api/v1/config/{key}`: the service entry, else the global one; the hot path. */
function getEntry(r: Router, x: Ctx): void {
  const getQuery = x.ScopeQuery.extend({ reveal: z.string().optional() });
  const getRoute = createRoute({
    method: "get",
    path: "/api/v1/config/{key}",
    ...requires(["config:read"], { reveal: ["secrets:read"] }),
    tags: ["Configuration"],
    summary: "Get a configuration",
    description: "Resolves the service scope, then the environment's global scope; `scope` " +
      "says which answered. Strong `ETag`; `If-None-Match` gives 304. " +
      "`X-Config-Stale: true` when served from cache while the store is down.",
    request: { params: KeyParam, query: getQuery },
    responses: {
      200: jsonContent(Entry, "The entry"),
      304: { description: "Not modified" },
      ...problemResponses(400, 403, 404, 503),
    },
  });
  // The hot path: documented from the same schemas, but validated inside one handler, since
  // the validator middleware of .openapi() makes Hono compose an async chain per request.
  r.openAPIRegistry.registerPath(getRoute);
  const parsed = x.getMemo;
  const parseGet = (c: Context<AppEnv>) => {
    const url = c.req.url;
    const memo = parsed.get(url);
    if (memo) return memo;
    const key = c.req.param("key") ?? "";
    const q = getQuery.safeParse(c.req.query());
    const kp = keyProblem(key);
    const errors = [
      ...(kp ? [{ field: "key", in: "path", message: kp }] : []),
      ...(q.success ? [] : fieldErrors(q.error, "query")),
    ];
    if (errors.length > 0 || !q.success) throw new ValidationError(errors);
    const out = {
      entryId: entryId(key, q.data.environment, q.data.service_name),
      // The same reading of the query as the authorization made (routes/access.ts).
      reveal: revealRequested(url),
    };
    if (parsed.size >= GET_MEMO_MAX) parsed.delete(parsed.keys().next().value!);
    parsed.set(url, out);
    return out;
  };
  r.get("/api/v1/config/:key", (c): Response | Promise<Response> => {
    const { entryId, reveal } = parseGet(c);
    if (reveal) {
      refuseReveal(c);
      return x.config.reveal({ id: entryId }).then((res) => {
        const out = getResponse(res, undefined);
        out.headers.set("cache-control", "no-store");
        return out;
      });
    }
    const inm = c.req.header("if-none-match");
    // A hot key is answered on this thread, synchronously; otherwise the actor answers.
    const near = x.config.getNear(entryId);
    if (near) return getResponse(near, inm);
    return x.config.get({ id: entryId }).then((res) => getResponse(res, inm), (err) => {
      // "Not found" from the caches while the store is failing may be old, as a 200 may.
      if (!(err instanceof NotFoundError) || err.extra.stale !== true) throw err;
      const p = errorToProblem(err, { instance: c.req.path, requestId: c.env?.requestId ?? "" });
      return problemResponse(p, { "x-config-stale": "true" });
    });
  });
}

/** `PUT /api/v1/config/{key}`: a new version (`If-Match` makes it a compare-and-set). */
function update(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "put",
      path: "/api/v1/config/{key}",
      ...requires(["config:write"]),
      tags: ["Configuration"],
      summary: "Update a configuration",
      description: "`If-Match` with the ETag makes it a compare-and-set (412 when stale).",
      request: {
        params: KeyParam,
        body: { required: true, content: { "application/json": { schema: writeBody(x) } } },
      },
      responses: {
        200: jsonContent(Entry, "Updated"),
        ...problemResponses(400, 404, 412, 413, 503),
      },
    }),
    async (c) => {
      const { key } = c.req.valid("param");
      const b = c.req.valid("json");
      const res = await x.config.update({
        id: entryId(key, b.environment, b.service_name),
        value: x.valueText(b.value),
        secret: b.secret,
        description: b.description,
        by: principal(c),
        ifVersion: ifMatch(c, b.service_name),
      });
      c.header("ETag", res.etag);
      return c.json(res.entry as z.infer<typeof Entry>, 200);
    },
  );
}

/** `DELETE /api/v1/config/{key}`: deletes, keeping the history. */
function remove(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "delete",
      path: "/api/v1/config/{key}",
      ...requires(["config:write"]),
      tags: ["Configuration"],
      summary: "Delete a configuration",
      description: "History is kept. `If-Match` makes it conditional (412 when stale).",
      request: { params: KeyParam, query: x.ScopeQuery },
      responses: {
        200: jsonContent(Entry.extend({ deleted: z.literal(true) }), "Deleted"),
        ...problemResponses(400, 404, 412, 503),
      },
    }),
    async (c) => {
      const { key } = c.req.valid("param");
      const q = c.req.valid("query");
      const res = await x.config.delete({
        id: entryId(key, q.environment, q.service_name),
        by: principal(c),
        ifVersion: ifMatch(c, q.service_name),
      });
      return c.json(res.entry as z.infer<typeof Entry> & { deleted: true }, 200);
    },
  );
}

/** `GET /api/v1/config/{key}/history`: every change, newest first. */
function history(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "get",
      path: "/api/v1/config/{key}/history",
      ...requires(["config:read"]),
      tags: ["Configuration"],
      summary: "Change history, newest first",
      request: { params: KeyParam, query: x.ScopeQuery.extend(x.Paging(50, 1000)) },
      responses: {
        200: jsonContent(z.array(HistoryItem), "History"),
        ...problemResponses(400, 503),
      },
    }),
    async (c) => {
      const { key } = c.req.valid("param");
      const q = c.req.valid("query");
      const rows = await x.config.history({
        id: entryId(key, q.environment, q.service_name),
        limit: q.limit,
        offset: q.offset,
      }, c.req.raw.signal);
      return c.json(rows as z.infer<typeof HistoryItem>[], 200);
    },
  );
}

/** `POST /api/v1/config/{key}/rollback`: a new version with an old version's value. */
function rollback(r: Router, x: Ctx): void {
  r.openapi(
    createRoute({
      method: "post",
      path: "/api/v1/config/{key}/rollback",
      ...requires(["config:write"]),
      tags: ["Configuration"],
      summary: "Write a new version with an old version's value",
      request: {
        params: KeyParam,
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                environment: x.Environment,
                service_name: ServiceName.nullable().optional(),
                version: z.number().int().min(1),
              }),
            },
          },
        },
      },
      responses: {
        200: jsonContent(Entry, "Rolled back"),
        ...problemResponses(400, 404, 412, 503),
      },
    }),
    async (c) => {
      const { key } = c.req.valid("param");
      const b = c.req.valid("json");
      const res = await x.config.rollback({
        id: entryId(key, b.environment, b.service_name),
        toVersion: b.version,
        by: principal(c),
        ifVersion: ifMatch(c, b.service_name),
      });
      c.header("ETag", res.etag);
      return c.json(res.entry as z.infer<typeof Entry>, 200);
    },
  );
}

/**
 * `updated_by`: the API token's name; without tokens the `X-User` header, else "anonymous".
 */
function principal(c: Context<AppEnv>): string {
  if (c.env.principal) return c.env.principal;
  const u = c.req.header("x-user");
  if (u === undefined || u === "") return "anonymous";
  if (!USER_PATTERN.test(u)) {
    throw new ValidationError([{
      field: "X-User",
      in: "header",
      message: "must be 1–128 printable ASCII characters",
    }]);
  }
  return u;
}

/** The request id, when given, goes in now: adding a header to a built Response costs more. */
function getResponse(res: GetReply, inm: string | undefined, requestId?: string): Response {
  // Weak comparison (RFC 9110 §13.1.2): a proxy may have weakened our strong tag.
  if (inm && (inm.trim() === "*" || inm.split(",").some((t) => weak(t) === res.etag))) {
    const h: Record<string, string> = { etag: res.etag };
    if (requestId !== undefined) h["x-request-id"] = requestId;
    return new Response(null, { status: 304, headers: h });
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    etag: res.etag,
  };
  if (res.stale) headers["x-config-stale"] = "true";
  if (requestId !== undefined) headers["x-request-id"] = requestId;
  return new Response(res.body, { status: 200, headers });
}

function weak(tag: string): string {
  const t = tag.trim();
  return t.startsWith("W/") ? t.slice(2) : t;
}

/**
 * The version an `If-Match` header names for the addressed scope (`"s3"` service, `"g3"`
 * global, or `"3"`); `*` means any. A tag of the other scope never matches (412).
 */
function ifMatch(c: Context<AppEnv>, service: string | null | undefined): number | undefined {
  const h = c.req.header("if-match");
  if (h === undefined || h.trim() === "*") return undefined;
  const m = /^\s*"([sg]?)(\d{1,9})"\s*$/.exec(h);
  if (!m) {
    throw new ValidationError([{
      field: "If-Match",
      in: "header",
      message: 'must be an ETag this service sent, e.g. "s3"',
    }]);
  }
  if (m[1] && m[1] !== (service ? "s" : "g")) {
    throw new PreconditionFailedError(
      `If-Match names the ${m[1] === "s" ? "service" : "global"} entry, not the one addressed`,
    );
  }
  return Number(m[2]);
}

function parseWait(w: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(w)!;
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

const enc = new TextEncoder();
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

function watchStream(
  c: Context<AppEnv>,
  filter: WatchFilter,
  after: number | undefined,
  config: ConfigClient,
  hub: WatchHub,
): Response {
  let unsubscribe = () => {};
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  // Shared with cancel(): a client that hangs up during the replay must not get a heartbeat
  // timer started after it left (enqueue on a cancelled stream throws from the timer).
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    async start(ctl) {
      const close = () => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
        try {
          ctl.close();
        } catch { /* already closed */ }
      };
      const push = (bytes: Uint8Array) => {
        if (closed) return;
        // A watcher this far behind is dropped rather than buffered without bound.
        if ((ctl.desiredSize ?? 0) < -SLOW_WATCHER_FRAMES) return close();
        ctl.enqueue(bytes);
      };
      // Without Last-Event-ID: past every write acknowledged before this watch began.
      let sent = after ?? config.changeIndex;
      let replaying = after !== undefined;
      const held: { seq: number; frame: () => Uint8Array }[] = [];
      unsubscribe = hub.subscribe(filter, (ch, frame) => {
        if (replaying) held.push({ seq: ch.seq, frame });
        else if (ch.seq > sent) {
          sent = ch.seq;
          push(frame());
        }
      });
      push(enc.encode("retry: 1000\n: connected\n\n"));
      if (after !== undefined) {
        try {
          // Subscribed first, replayed second: nothing committed in between is lost.
          while (true) {
            const missed = await config.changes({
              after: sent,
              environment: filter.environment,
              service: filter.service,
              limit: 1000,
            });
            for (const ch of missed) {
              push(sseFrame(ch));
              sent = ch.seq;
            }
            if (missed.length < 1000) break;
          }
        } catch {
          return close();
        }
        replaying = false;
        for (const h of held) {
          if (h.seq > sent) {
            sent = h.seq;
            push(h.frame());
          }
        }
        held.length = 0;
      }
      if (closed) return;
      heartbeat = setInterval(() => push(enc.encode(": heartbeat\n\n")), HEARTBEAT_MS);
      if (hub.closing.aborted) close();
      else hub.closing.addEventListener("abort", close, { once: true });
    },
    cancel() {
      closed = true;
      unsubscribe();
      clearInterval(heartbeat);
    },
  }, { highWaterMark: 16 });
  return c.body(stream, 200, SSE_HEADERS);
}
