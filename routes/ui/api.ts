/**
 * The console is one more client of the API: every read and action it shows goes through
 * the service's own routes (the same authorization, limits and validation as any client),
 * carrying the signed-in token. Nothing here reaches an actor directly.
 */
import type { Context } from "hono";
import type { AppEnv } from "../router.ts";

/** The app's own fetch handler (routes/app.ts), with the connection info of the caller. */
export type FetchApp = (req: Request, env?: unknown) => Response | Promise<Response>;

export interface ApiAnswer {
  status: number;
  /** Parsed JSON, or the text when it is not JSON. */
  body: unknown;
  headers: Headers;
}

/** Calls `method path` of the API as the caller, with `token` when signed in. */
export async function callApi(
  fetchApp: FetchApp,
  c: Context<AppEnv>,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<ApiAnswer> {
  const res = await sendApi(fetchApp, c, token, method, path, { body, headers: extra });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Sends `method path` to the API as the caller (with `token` when signed in) and answers the
 * API's response as it is, body unread (a stream stays a stream).
 */
export async function sendApi(
  fetchApp: FetchApp,
  c: Context<AppEnv>,
  token: string | null,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    "x-request-id": `${c.env.requestId}.ui`,
    ...opts.headers,
  };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const req = new Request(new URL(path, c.req.url), {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  return await fetchApp(req, { remoteAddr: c.env.remoteAddr });
}
