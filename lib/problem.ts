/**
 * RFC 9457 problem details: the one mapping from errors to `application/problem+json`.
 * A 500 never carries internals; it is logged with the request id instead.
 */
import { DomainError, ValidationError } from "./errors.ts";
import { log } from "./log.ts";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  request_id?: string;
  [extra: string]: unknown;
}

/** Reason phrases of the statuses the service answers (problem titles, HTTP/1.1 status lines). */
export const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Builds a problem document; `type` is a stable URN per title. */
export function problem(
  status: number,
  detail: string,
  extra: Record<string, unknown> = {},
): Problem {
  const title = STATUS_TEXT[status] ?? "Error";
  return {
    type: `urn:problem:config-service:${title.toLowerCase().replace(/[^a-z]+/g, "-")}`,
    title,
    status,
    detail,
    ...extra,
  };
}

/** A JSON Response carrying a problem document. */
export function problemResponse(p: Problem, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", PROBLEM_CONTENT_TYPE);
  return new Response(JSON.stringify(p), { status: p.status, headers: h });
}

/** Maps any thrown value to a problem; unknown errors become a logged, opaque 500. */
export function errorToProblem(
  err: unknown,
  ctx: { instance: string; requestId: string },
): Problem {
  const base = { instance: ctx.instance, request_id: ctx.requestId };
  if (err instanceof ValidationError) {
    return problem(400, err.message, { ...base, errors: err.errors });
  }
  if (err instanceof DomainError) {
    return problem(err.status, err.message, { ...base, ...err.extra });
  }
  // Hono's HTTPException (malformed JSON, body limit, …) carries its own status.
  const status = (err as { status?: unknown })?.status;
  if (status === 415) {
    // Thrown by @hono/zod-openapi's media-type gate: every body we take is JSON.
    return problem(415, "The request body must be JSON: send Content-Type: application/json", {
      ...base,
      errors: [{ field: "Content-Type", in: "header", message: "must be application/json" }],
    });
  }
  if (typeof status === "number" && status >= 400 && status < 500) {
    return problem(status, (err as Error).message || STATUS_TEXT[status] || "Bad request", base);
  }
  log.error("unhandled error", {
    request_id: ctx.requestId,
    path: ctx.instance,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return problem(500, "The server failed to handle the request; see its log.", base);
}
