/**
 * Feature-flag benchmark fixtures for `deno task bench`:
 *
 * - 20 flag definitions (`bench-flag-00` … `bench-flag-19`): flexibleRollout with a constraint
 *   on `region` (with and without variants carrying string and JSON payloads) and a list of
 *   user ids. The same definitions go into a FLAGS_FILE for the embedded service and, when
 *   the local stack is up, into Unleash through its Admin API. Unleash 8 no longer has the
 *   `userWithId` strategy, so the user list is what it recommends instead: a 100 %
 *   flexibleRollout with a `userId IN […]` constraint.
 * - wrk Lua scripts that change `user_id` (and rotate the region) on every request, so no
 *   answer can be cached per request body.
 * - {@link provisionUnleash}: creates the flags in Unleash idempotently (409 on create is
 *   fine; a strategy list that differs is replaced) and waits for the client API to serve
 *   them; {@link agreeWithUnleash} checks that our bulk answers and Unleash's frontend API
 *   enable the same flags for the same contexts.
 */

import { wrk, type WrkOptions, type WrkResult } from "./wrk.ts";

export const FLAG_ENV = "development";
export const FLAG_COUNT = 20;
const REGIONS = ["eu-west", "us-east", "ap-south"];
/** The user list: user-1 … user-200 (a sample of the per-request ids hits them). */
const USER_IDS = Array.from({ length: 200 }, (_, i) => `user-${i + 1}`);

interface Strategy {
  name: string;
  parameters: Record<string, string>;
  constraints: { contextName: string; operator: string; values: string[] }[];
  variants: {
    name: string;
    weight: number;
    weightType: "variable";
    stickiness: string;
    payload: { type: string; value: string };
  }[];
}

export interface FlagDef {
  name: string;
  /** What a caller passes as `default_value` (its JSON type is the flag type). */
  defaultValue: unknown;
  strategies: Strategy[];
}

const variant = (name: string, type: string, value: string) => ({
  name,
  weight: 500,
  weightType: "variable" as const,
  stickiness: "default",
  payload: { type, value },
});

/** The 20 definitions: four kinds, five flags of each. */
export function flagDefinitions(): FlagDef[] {
  return Array.from({ length: FLAG_COUNT }, (_, i) => {
    const name = `bench-flag-${String(i).padStart(2, "0")}`;
    const rollout = (pct: number, constraints: Strategy["constraints"]) => ({
      name: "flexibleRollout",
      parameters: { rollout: String(pct), stickiness: "default", groupId: name },
      constraints,
      variants: [] as Strategy["variants"],
    });
    const inRegions = [{ contextName: "region", operator: "IN", values: ["eu-west", "us-east"] }];
    switch (i % 4) {
      case 0: // boolean: 50 % of eu-west and us-east
        return { name, defaultValue: false, strategies: [rollout(50, inRegions)] };
      case 1: // string payloads: everyone in eu-west and us-east, split blue/red
        return {
          name,
          defaultValue: "none",
          strategies: [{
            ...rollout(100, inRegions),
            variants: [variant("blue", "string", "blue"), variant("red", "string", "red")],
          }],
        };
      case 2: // boolean: a list of users, or 10 % of everyone outside ap-south
        return {
          name,
          defaultValue: false,
          strategies: [
            rollout(100, [{ contextName: "userId", operator: "IN", values: USER_IDS }]),
            rollout(10, [{ contextName: "region", operator: "NOT_IN", values: ["ap-south"] }]),
          ],
        };
      default: // JSON payloads: 30 % of everyone but ap-south
        return {
          name,
          defaultValue: {},
          strategies: [{
            ...rollout(30, [{ contextName: "region", operator: "NOT_IN", values: ["ap-south"] }]),
            // In name order: Unleash serves variants sorted by name, and the order decides
            // which variant a hash selects, so the FLAGS_FILE must list them the same way.
            variants: [
              variant("large", "json", '{"limit":1000,"tier":"large"}'),
              variant("small", "json", '{"limit":10,"tier":"small"}'),
            ],
          }],
        };
    }
  });
}

/** The definitions as an Unleash client-API document (what `/api/client/features` serves). */
export function flagsDocument(defs = flagDefinitions()) {
  return {
    version: 2,
    features: defs.map((d) => ({
      name: d.name,
      type: "release",
      enabled: true,
      project: "default",
      stale: false,
      strategies: d.strategies,
      variants: [],
    })),
    segments: [],
  };
}

/** Writes {@link flagsDocument} to a temporary file; returns its path (for FLAGS_FILE). */
export function writeFlagsFile(): string {
  const f = Deno.makeTempFileSync({ prefix: "cs-bench-flags-", suffix: ".json" });
  Deno.writeTextFileSync(f, JSON.stringify(flagsDocument()));
  return f;
}

const luaStr = (s: string) => JSON.stringify(s);
const luaRegions = `local regions = {${REGIONS.map(luaStr).join(", ")}}`;

/**
 * POST /api/v1/feature-flags/evaluate rotating over the 20 flags (each with a default of its
 * type), a new user_id on every request and one of three regions.
 */
export function luaEvaluate(path = "/api/v1/feature-flags/evaluate"): string {
  const defs = flagDefinitions();
  const rows = defs.map((d) => `  {${luaStr(d.name)}, ${luaStr(JSON.stringify(d.defaultValue))}}`);
  return `
${luaRegions}
local flags = {
${rows.join(",\n")}
}
local headers = {["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n + 1
  local f = flags[(n % #flags) + 1]
  local body = '{"flag_name":"' .. f[1] .. '","user_id":"user-' .. n ..
    '","context":{"region":"' .. regions[(n % 3) + 1] .. '","plan":"pro"},"default_value":' ..
    f[2] .. ',"environment":"${FLAG_ENV}"}'
  return wrk.format("POST", "${path}", headers, body)
end
`;
}

/** The `flags` array of a bulk body for the 20 flags. */
export function bulkFlags(): { flag_name: string; default_value: unknown }[] {
  return flagDefinitions().map((d) => ({ flag_name: d.name, default_value: d.defaultValue }));
}

/** POST /api/v1/feature-flags/evaluate/bulk of the 20 flags, a new user_id per request. */
export function luaBulk(): string {
  const flags = JSON.stringify(bulkFlags());
  return `
${luaRegions}
local head = ${luaStr(`{"flags":${flags},"user_id":"user-`)}
local headers = {["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n + 1
  local body = head .. n .. '","context":{"region":"' .. regions[(n % 3) + 1] ..
    '","plan":"pro"},"environment":"${FLAG_ENV}"}'
  return wrk.format("POST", "/api/v1/feature-flags/evaluate/bulk", headers, body)
end
`;
}

/**
 * GET `<api>/frontend` of the Unleash server (every enabled toggle for one context), a new
 * userId per request and one of three regions; the run stops after `max` responses.
 */
export function luaUnleashFrontend(apiPath: string, token: string, max = 1e12): string {
  return `
${luaRegions}
local headers = {["Authorization"] = ${luaStr(token)}}
local n = 0
local answered = 0
request = function()
  n = n + 1
  local path = "${apiPath}/frontend?userId=user-" .. n .. "&properties%5Bregion%5D=" ..
    regions[(n % 3) + 1] .. "&properties%5Bplan%5D=pro"
  return wrk.format("GET", path, headers)
end
response = function()
  answered = answered + 1
  if answered >= ${Math.floor(max)} then wrk.thread:stop() end
end
`;
}

/** The local Unleash (UNLEASH_URL, tokens for FLAG_ENV) or null when not configured. */
export function unleashFromEnv(): {
  api: string;
  adminToken: string;
  clientToken: string;
  clientTokens: string;
  frontendToken: string;
} | null {
  const api = Deno.env.get("UNLEASH_URL")?.replace(/\/+$/, "");
  const adminToken = Deno.env.get("UNLEASH_API_TOKEN");
  const clientTokens = Deno.env.get("UNLEASH_CLIENT_TOKENS") ?? "";
  const pick = (pairs: string) =>
    pairs.split(",").map((p) => p.trim().split("=")).find(([e]) => e === FLAG_ENV)?.slice(1)
      .join("=");
  const clientToken = pick(clientTokens);
  const frontendToken = pick(Deno.env.get("UNLEASH_FRONTEND_TOKENS") ?? "");
  if (!api || !adminToken || !clientToken || !frontendToken) return null;
  return { api, adminToken, clientToken, clientTokens, frontendToken };
}

type Unleash = NonNullable<ReturnType<typeof unleashFromEnv>>;

/** What Unleash's rate limiter has left for this client address (`RateLimit-*` headers). */
async function rateBudget(
  u: Unleash,
): Promise<{ limit: number; remaining: number; reset: number }> {
  const res = await fetch(`${u.api}/frontend?userId=budget`, {
    headers: { Authorization: u.frontendToken },
  });
  await res.body?.cancel();
  const h = (name: string) => Number(res.headers.get(name) ?? NaN);
  return {
    limit: h("ratelimit-limit"),
    remaining: h("ratelimit-remaining"),
    reset: h("ratelimit-reset"),
  };
}

/**
 * GET `path` with `headers` on every request; the run stops after `max` responses. For the
 * Client API rows (`/api/client/features`, with or without `If-None-Match`).
 */
export function luaGet(path: string, headers: Record<string, string>, max = 1e12): string {
  const h = Object.entries(headers).map(([k, v]) => `[${luaStr(k)}] = ${luaStr(v)}`).join(", ");
  return `
local headers = {${h}}
local answered = 0
request = function()
  return wrk.format("GET", ${luaStr(path)}, headers)
end
response = function()
  answered = answered + 1
  if answered >= ${Math.floor(max)} then wrk.thread:stop() end
end
`;
}

/**
 * wrk on one of Unleash's SDK APIs within its rate limit. Unleash 8 limits them
 * (`/api/client`, `/api/frontend`) per client address, 20,000 requests per fixed minute by
 * default (SDK_API_RATE_LIMIT_PER_MINUTE), and answers 429 beyond — cheaper than an
 * evaluation, so counting them would flatter it. This waits for a fresh window when less
 * than 15,000 requests are left, then runs the warm-up and the measurement, each stopping
 * once its share of the window is used (the measurement may end before `o.durationS`).
 * @param lua the wrk script for the target path, stopping after `max` answers.
 * @returns the measurement and a note on how it was bounded.
 */
export async function measureUnleash(
  u: Unleash,
  o: WrkOptions,
  scriptFile: (lua: string) => string,
  lua: (apiPath: string, max?: number) => string,
): Promise<{ r: WrkResult; note: string }> {
  let b = await rateBudget(u);
  if (Number.isFinite(b.remaining) && b.remaining < 15_000) {
    await new Promise((r) => setTimeout(r, (b.reset + 1) * 1000));
    b = await rateBudget(u);
  }
  const origin = new URL(u.api).origin;
  const path = new URL(u.api).pathname.replace(/\/+$/, "");
  if (!Number.isFinite(b.remaining)) {
    const script = scriptFile(lua(path));
    await wrk(origin, { ...o, durationS: 2, script });
    return { r: await wrk(origin, { ...o, script }), note: "no rate limit reported" };
  }
  // Leave room for the synced service's polls of /api/client (the same client address).
  const usable = b.remaining - 300;
  const warm = Math.min(3_000, Math.floor(usable / 6));
  await wrk(origin, { ...o, durationS: 2, script: scriptFile(lua(path, warm)) });
  const r = await wrk(origin, { ...o, script: scriptFile(lua(path, usable - warm)) });
  const note = `Unleash's SDK-API rate limit is ${b.limit} requests/min per client address; ` +
    `the measurement ${r.seconds < o.durationS - 0.5 ? "stopped" : "ended"} after ` +
    `${r.requests} requests in ${r.seconds.toFixed(2)} s with ${r.errors} non-2xx`;
  return { r, note };
}

/** The ETag `url` answers now (for the 304 rows). */
export async function currentEtag(url: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(url, { headers });
  await res.body?.cancel();
  const etag = res.headers.get("etag");
  if (!res.ok || !etag) throw new Error(`${url} answered ${res.status} without an ETag`);
  return etag;
}

async function call(
  u: Unleash,
  method: string,
  path: string,
  body?: unknown,
  ok: number[] = [],
): Promise<unknown> {
  const res = await fetch(`${u.api}${path}`, {
    method,
    headers: { Authorization: u.adminToken, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok && !ok.includes(res.status)) {
    throw new Error(`Unleash ${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
  }
  return text ? JSON.parse(text) : null;
}

/** A strategy as compared for idempotency: what we send, in a stable key order. */
function strategyKey(s: Partial<Strategy>): string {
  return JSON.stringify({
    name: s.name,
    parameters: Object.fromEntries(Object.entries(s.parameters ?? {}).sort()),
    constraints: (s.constraints ?? []).map((c) => ({
      contextName: c.contextName,
      operator: c.operator,
      values: c.values,
    })),
    variants: (s.variants ?? []).map((v) => ({
      name: v.name,
      weight: v.weight,
      stickiness: v.stickiness,
      payload: v.payload,
    })),
  });
}

/**
 * Creates the 20 flags in Unleash's default project (idempotent: an existing flag is kept,
 * its FLAG_ENV strategies replaced only if they differ), turns them on in FLAG_ENV, and
 * waits until the client API serves them.
 * @returns how many flags FLAG_ENV has in all (the frontend API evaluates every one).
 * @throws {Error} when the Admin API refuses or the flags do not show up within 30 s.
 */
export async function provisionUnleash(u: Unleash): Promise<number> {
  const defs = flagDefinitions();
  const base = "/admin/projects/default/features";
  for (const d of defs) {
    await call(u, "POST", base, { name: d.name, type: "release" }, [409]);
    const envPath = `${base}/${d.name}/environments/${FLAG_ENV}`;
    const have = await call(u, "GET", `${envPath}/strategies`) as (Strategy & { id: string })[];
    const same = have.length === d.strategies.length &&
      have.every((s, i) => strategyKey(s) === strategyKey(d.strategies[i]));
    if (!same) {
      for (const s of have) await call(u, "DELETE", `${envPath}/strategies/${s.id}`);
      for (const s of d.strategies) await call(u, "POST", `${envPath}/strategies`, s);
    }
    await call(u, "POST", `${envPath}/on`);
  }
  const want = new Map(defs.map((d) => [d.name, d.strategies.map(strategyKey).join("|")]));
  const deadline = Date.now() + 30_000;
  while (true) {
    const res = await fetch(`${u.api}/client/features`, {
      headers: { Authorization: u.clientToken },
    });
    const doc = await res.json() as {
      features: { name: string; enabled: boolean; strategies: Strategy[] }[];
    };
    const ready = [...want].every(([name, key]) => {
      const f = doc.features.find((x) => x.name === name);
      return f?.enabled && f.strategies.map(strategyKey).join("|") === key;
    });
    if (ready) return doc.features.length;
    if (Date.now() > deadline) {
      throw new Error("the bench flags did not reach Unleash's client API");
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Evaluates `samples` contexts through our bulk endpoint and Unleash's frontend API and
 * compares the enabled flags, retrying for up to 30 s while Unleash's frontend cache
 * catches up. Resolves the number of contexts that disagree at the end (0 = same answers).
 */
export async function agreeWithUnleash(
  u: Unleash,
  serviceUrl: string,
  samples = 60,
): Promise<number> {
  const names = flagDefinitions().map((d) => d.name);
  const deadline = Date.now() + 30_000;
  while (true) {
    let mismatches = 0;
    for (let i = 0; i < samples; i++) {
      const userId = `user-${i * 7 + 1}`;
      const region = REGIONS[i % 3];
      const ours = await fetch(`${serviceUrl}/api/v1/feature-flags/evaluate/bulk`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          flags: names.map((n) => ({ flag_name: n, default_value: false })),
          user_id: userId,
          context: { region, plan: "pro" },
          environment: FLAG_ENV,
        }),
      }).then((r) => r.json()) as Record<string, { value: unknown }>;
      const theirs = await fetch(
        `${u.api}/frontend?userId=${userId}&properties%5Bregion%5D=${region}` +
          `&properties%5Bplan%5D=pro`,
        { headers: { Authorization: u.frontendToken } },
      ).then((r) => r.json()) as { toggles: { name: string; enabled: boolean }[] };
      const a = names.filter((n) => ours[n]?.value === true).join(",");
      const b = theirs.toggles.filter((t) => t.enabled && names.includes(t.name))
        .map((t) => t.name).sort().join(",");
      if (a !== b) mismatches++;
    }
    if (mismatches === 0 || Date.now() > deadline) return mismatches;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
