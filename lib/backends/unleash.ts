/** The Unleash server's client API (`/api/client/features`) and health endpoint. */
import type { BackendProbe } from "../backend.ts";

/** What one fetch of client features returned. */
export type FeaturesFetch =
  | { status: 200; etag: string | null; body: ClientFeatures }
  | { status: 304; etag: string | null };

/** The Unleash client-API document: `{version, features, segments?}`. */
export interface ClientFeatures {
  version: number;
  features: Record<string, unknown>[];
  segments?: Record<string, unknown>[];
  query?: Record<string, unknown>;
}

/** `UNLEASH_URL` is the API root (`…/api`); health lives beside it. */
export function unleashBase(apiUrl: string): string {
  return apiUrl.replace(/\/+$/, "").replace(/\/api$/, "");
}

/**
 * Fetches client features with a backend token, sending `If-None-Match` when `etag` is given.
 * @throws {Error} on a network error or a status other than 200/304 (the token is never
 *   part of the message).
 */
export async function fetchClientFeatures(
  apiUrl: string,
  token: string,
  opts: { etag?: string | null; appName?: string; instanceId?: string; signal?: AbortSignal } = {},
): Promise<FeaturesFetch> {
  const headers: Record<string, string> = {
    Authorization: token,
    Accept: "application/json",
    "UNLEASH-APPNAME": opts.appName ?? "config-service",
    "UNLEASH-INSTANCEID": opts.instanceId ?? "config-service-1",
  };
  if (opts.etag) headers["If-None-Match"] = opts.etag;
  const res = await fetch(`${apiUrl.replace(/\/+$/, "")}/client/features`, {
    headers,
    signal: opts.signal,
  });
  if (res.status === 304) {
    await res.body?.cancel();
    return { status: 304, etag: res.headers.get("etag") ?? opts.etag ?? null };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`Unleash client features answered HTTP ${res.status}`);
  }
  return { status: 200, etag: res.headers.get("etag"), body: await res.json() };
}

export function unleashProbe(apiUrl: string): BackendProbe {
  return {
    name: "flags",
    kind: "unleash",
    async check(signal) {
      const res = await fetch(`${unleashBase(apiUrl)}/health`, { signal });
      const body = await res.text();
      if (!res.ok) throw new Error(`Unleash /health answered HTTP ${res.status}`);
      if (!body.includes("GOOD")) throw new Error(`Unleash /health says ${body.slice(0, 80)}`);
    },
  };
}
