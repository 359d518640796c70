/**
 * `deno task bench`: measures, in one run, a bare `Deno.serve` baseline and the service's
 * endpoints with wrk, and prints req/s, p50, p99 and each ratio to the baseline as a
 * Markdown table (the benchmark table in docs/benchmarks.md comes from here).
 *
 * Options: --duration S (default 10), --connections N (default 50), --only NAME[,NAME],
 * --skip-extra (no SSE fan-out / RSS runs). wrk runs pinned to CPU 0 (`BENCH_WRK_CPU`, `none`
 * to turn off) and every server on CPU 1 (`BENCH_SERVER_CPU`; see wrk.ts); the baseline is measured again right before every row (each
 * ratio is to that one) and after the last. With DATABASE_URL set (the local stack), the
 * write scenario also runs against PostgreSQL in a database of its own.
 *
 * Feature flags (`--only flag`): single and bulk evaluation of 20 flags from a FLAGS_FILE,
 * beside a bare `Deno.serve` POST baseline that parses its body; with UNLEASH_URL,
 * UNLEASH_API_TOKEN, UNLEASH_CLIENT_TOKENS and UNLEASH_FRONTEND_TOKENS set (the local stack),
 * the same flags are created in Unleash and its frontend API is measured against our
 * evaluation of the definitions synced from it (see bench/flags.ts).
 *
 * The service runs as its own process with its default settings, as deployed: LOG_LEVEL=INFO,
 * one JSON log line per request on a stdout pipe this process drains. One extra row measures
 * the hot key again on a service at LOG_LEVEL=WARNING (no request log), right after the INFO
 * row, to show what the request log costs.
 */
import { parseArgs } from "node:util";
import { SERVER_CPU, wrk, WRK_CPU, type WrkResult } from "./wrk.ts";
import { type Child, post, spawnBare, spawnService } from "./service.ts";
import { sseFanout } from "./sse_fanout.ts";
import { rssWithCachedEntries } from "./rss.ts";
import { registryBench } from "./registry.ts";
import { consolePage } from "./console.ts";
import { serviceSlowBodies } from "./service_slow_bodies.ts";
import { createPostgres } from "../lib/backends/postgres.ts";
import {
  agreeWithUnleash,
  currentEtag,
  FLAG_COUNT,
  FLAG_ENV,
  luaBulk,
  luaEvaluate,
  luaGet,
  luaUnleashFrontend,
  measureUnleash,
  provisionUnleash,
  unleashFromEnv,
  writeFlagsFile,
} from "./flags.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "50" },
    only: { type: "string" },
    "skip-extra": { type: "boolean", default: false },
  },
});
const opts = {
  durationS: Number(values.duration),
  connections: Number(values.connections),
  threads: 1,
};
const only = values.only?.split(",");
const wanted = (name: string) => !only || only.some((o) => name.includes(o));

interface Scenario {
  name: string;
  path: string;
  /** wrk Lua script text for POST bodies or per-request paths. */
  lua?: string;
  /** Which process serves it (the Unleash server itself for "unleash"). */
  target?:
    | "embedded"
    | "warning"
    | "direct"
    | "postgres"
    | "no-near-cache"
    | "bare"
    | "unleash"
    | "flags-unleash";
}

const ENV = "development";
const luaPost = (path: string, body: unknown) => `
wrk.method = "POST"
wrk.path = "${path}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = ${JSON.stringify(JSON.stringify(body))}
`;
// Each request creates a new key: a write with its history row and change-log (outbox) row.
const luaCreates = (prefix: string) => `
local n = 0
request = function()
  n = n + 1
  local body = '{"key":"${prefix}-' .. n .. '","value":{"n":' .. n .. '},"environment":"${ENV}","service_name":"bench"}'
  return wrk.format("POST", "/api/v1/config", {["Content-Type"] = "application/json"}, body)
end
`;

const BULK_KEYS = Array.from({ length: 50 }, (_, i) => `bulk-key-${i}`);
const HOT_KEY = "GET /api/v1/config/{key} (hot key: near cache on the HTTP thread)";
const HOT_KEY_WARNING = "GET /api/v1/config/{key} (hot key, LOG_LEVEL=WARNING: no request log)";
const HOT_KEY_DIRECT =
  "GET /api/v1/config/{key} (hot key, HTTP_H2C_COMPAT=false: Deno.serve without the h2c relay)";
const SCENARIOS: Scenario[] = [
  { name: "GET /live (all middleware, tiny JSON)", path: "/live" },
  { name: "GET /health (all middleware, no actor hop)", path: "/health" },
  { name: "GET /ready (round trip to 4 actors)", path: "/ready" },
  {
    name: HOT_KEY,
    path: `/api/v1/config/model_path?environment=${ENV}&service_name=asr-service`,
  },
  {
    name: HOT_KEY_WARNING,
    path: `/api/v1/config/model_path?environment=${ENV}&service_name=asr-service`,
    target: "warning",
  },
  {
    name: HOT_KEY_DIRECT,
    path: `/api/v1/config/model_path?environment=${ENV}&service_name=asr-service`,
    target: "direct",
  },
  {
    name: "GET /api/v1/config/{key} (cached in the actor: one round trip)",
    path: `/api/v1/config/model_path?environment=${ENV}&service_name=asr-service`,
    target: "no-near-cache",
  },
  {
    name: "POST /api/v1/config/bulk (50 keys, cached)",
    path: "/api/v1/config/bulk",
    lua: luaPost("/api/v1/config/bulk", {
      keys: BULK_KEYS,
      environment: ENV,
      service_name: "asr-service",
    }),
  },
  {
    name: "POST /api/v1/config (create: entry + history + outbox), SQLite",
    path: "/api/v1/config",
    lua: luaCreates(`w${Date.now()}`),
  },
  {
    name: "POST /api/v1/config (create: entry + history + outbox), PostgreSQL",
    path: "/api/v1/config",
    lua: luaCreates(`w${Date.now()}`),
    target: "postgres",
  },
];

const unleash = unleashFromEnv();
const FLAG_NAMES = {
  barePost: "bare Deno.serve POST, parses the JSON body, small JSON (flag POST baseline)",
  evaluate: `POST /api/v1/feature-flags/evaluate (${FLAG_COUNT} flags in FLAGS_FILE, new user_id ` +
    "per request)",
  evaluateDirect:
    `POST /api/v1/feature-flags/evaluate (${FLAG_COUNT} flags, HTTP_H2C_COMPAT=false)`,
  bulk: `POST /api/v1/feature-flags/evaluate/bulk (${FLAG_COUNT} flags, FLAGS_FILE)`,
  unleash:
    `Unleash 8 frontend API, GET /api/frontend (the same ${FLAG_COUNT} flags, all evaluated)`,
  oursBulk: `POST /api/v1/feature-flags/evaluate/bulk (${FLAG_COUNT} flags synced from Unleash)`,
  oursOne: "POST /api/v1/feature-flags/evaluate (1 flag, synced from Unleash)",
  oursFrontend:
    `GET /api/frontend (the same ${FLAG_COUNT} flags synced from Unleash, all evaluated)`,
  unleashFeatures: "Unleash 8 client API, GET /api/client/features (200)",
  unleashFeatures304: "Unleash 8 client API, GET /api/client/features (If-None-Match: 304)",
  oursFeatures: "GET /api/client/features (synced from Unleash, 200)",
  oursFeatures304: "GET /api/client/features (synced from Unleash, If-None-Match: 304)",
};
SCENARIOS.push(
  {
    name: FLAG_NAMES.barePost,
    path: "/",
    lua: luaEvaluate("/"),
    target: "bare",
  },
  { name: FLAG_NAMES.evaluate, path: "/api/v1/feature-flags/evaluate", lua: luaEvaluate() },
  {
    name: FLAG_NAMES.evaluateDirect,
    path: "/api/v1/feature-flags/evaluate",
    lua: luaEvaluate(),
    target: "direct",
  },
  { name: FLAG_NAMES.bulk, path: "/api/v1/feature-flags/evaluate/bulk", lua: luaBulk() },
  // Its wrk script is made at run time, within Unleash's rate limit (measureUnleashFrontend).
  { name: FLAG_NAMES.unleash, path: "/api/frontend", target: "unleash" },
  {
    name: FLAG_NAMES.oursBulk,
    path: "/api/v1/feature-flags/evaluate/bulk",
    lua: luaBulk(),
    target: "flags-unleash",
  },
  {
    name: FLAG_NAMES.oursOne,
    path: "/api/v1/feature-flags/evaluate",
    lua: luaEvaluate(),
    target: "flags-unleash",
  },
  // Unleash's SDK APIs beside ours, as unchanged Unleash SDKs call them (their scripts and
  // ETags are made at run time: see the loop).
  {
    name: FLAG_NAMES.oursFrontend,
    path: "/api/frontend",
    lua: luaUnleashFrontend("/api", "any-frontend-key"),
    target: "flags-unleash",
  },
  { name: FLAG_NAMES.unleashFeatures, path: "/api/client/features", target: "unleash" },
  { name: FLAG_NAMES.unleashFeatures304, path: "/api/client/features", target: "unleash" },
  { name: FLAG_NAMES.oursFeatures, path: "/api/client/features", target: "flags-unleash" },
  { name: FLAG_NAMES.oursFeatures304, path: "/api/client/features", target: "flags-unleash" },
);

async function seed(svc: Child): Promise<void> {
  await post(`${svc.url}/api/v1/config`, {
    key: "model_path",
    value: "/models/asr",
    environment: ENV,
    service_name: "asr-service",
    description: "Path to ASR model files",
  });
  for (const k of BULK_KEYS) {
    await post(`${svc.url}/api/v1/config`, { key: k, value: k, environment: ENV });
  }
}

const tmpFiles: string[] = [];
function luaFile(text: string): string {
  const f = Deno.makeTempFileSync({ suffix: ".lua" });
  Deno.writeTextFileSync(f, text);
  tmpFiles.push(f);
  return f;
}

/** A measured row and the bare baseline measured just before it (its ratio's denominator). */
const rows: { name: string; r: WrkResult; base: number }[] = [];
const extra: string[] = [];
const flagsFile = writeFlagsFile();
tmpFiles.push(flagsFile);
const bare = await spawnBare();
const svc = await spawnService({ FLAGS_FILE: flagsFile });
const quiet = wanted(HOT_KEY_WARNING) ? await spawnService({ LOG_LEVEL: "WARNING" }) : null;
const direct = wanted(HOT_KEY_DIRECT) || wanted(FLAG_NAMES.evaluateDirect)
  ? await spawnService({ FLAGS_FILE: flagsFile, HTTP_H2C_COMPAT: "false" })
  : null;
const noNear = await spawnService({ CONFIG_NEAR_CACHE_ENTRIES: "0" });
let pg: { svc: Child; drop: () => Promise<void> } | null = null;
let flagsUnleash: Child | null = null;
let unleashReady = false;
let unleashFlagCount = 0;
try {
  await seed(svc);
  if (quiet) await seed(quiet);
  if (direct) await seed(direct);
  await seed(noNear);
  const pgUrl = Deno.env.get("DATABASE_URL");
  if (pgUrl && SCENARIOS.some((s) => s.target === "postgres" && wanted(s.name))) {
    const admin = createPostgres(pgUrl, { max: 1 });
    const db = `cs_bench_${Date.now()}`;
    await admin.unsafe(`CREATE DATABASE ${db}`);
    const url = new URL(pgUrl);
    url.pathname = `/${db}`;
    const child = await spawnService({ DATABASE_URL: url.toString() });
    pg = {
      svc: child,
      drop: async () => {
        await child.stop();
        await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
        await admin.end();
      },
    };
  }
  const unleashWanted = SCENARIOS.some((s) =>
    (s.target === "unleash" || s.target === "flags-unleash") && wanted(s.name)
  );
  if (unleashWanted && !unleash) {
    extra.push(
      "- skipped the Unleash comparison: UNLEASH_URL, UNLEASH_API_TOKEN, UNLEASH_CLIENT_TOKENS " +
        'and UNLEASH_FRONTEND_TOKENS are not all set (`eval "$(bash scripts/stack.sh env)"`)',
    );
  } else if (unleashWanted && unleash) {
    try {
      unleashFlagCount = await provisionUnleash(unleash);
      flagsUnleash = await spawnService({
        UNLEASH_URL: unleash.api,
        UNLEASH_CLIENT_TOKENS: unleash.clientTokens,
        UNLEASH_AUTO_SYNC_ON_STARTUP: "true",
      });
      const mismatches = await agreeWithUnleash(unleash, flagsUnleash.url);
      extra.push(
        mismatches > 0
          ? `- WARNING: our bulk answers and Unleash's frontend API disagree for ${mismatches} ` +
            "of 60 sample contexts"
          : "- our bulk answers enable the same flags as Unleash's frontend API for 60 of 60 " +
            "sample contexts",
      );
      unleashReady = true;
    } catch (err) {
      extra.push(`- skipped the Unleash comparison: ${(err as Error).message}`);
    }
  }
  const warm = { ...opts, durationS: 2 };
  await wrk(`${bare.url}/`, warm);
  const base = await wrk(`${bare.url}/`, opts);
  rows.push({ name: "bare Deno.serve, small JSON (baseline)", r: base, base: base.rps });
  // Each row's ratio is to a baseline measured right before it: on this 2-core machine
  // other processes (the local stack's JVMs) shift throughput by 20 % within minutes, so a
  // baseline from the start of the run would make later rows look better or worse.
  let latest = base.rps;
  const baseline = async () => (latest = (await wrk(`${bare.url}/`, opts)).rps);
  for (const s of SCENARIOS) {
    if (!wanted(s.name)) continue;
    if (s.target === "unleash") {
      if (!unleash || !unleashReady) continue;
      const token = { Authorization: unleash.clientToken };
      const lua = s.name === FLAG_NAMES.unleash
        ? (api: string, max?: number) => luaUnleashFrontend(api, unleash.frontendToken, max)
        : s.name === FLAG_NAMES.unleashFeatures
        ? (api: string, max?: number) => luaGet(`${api}/client/features`, token, max)
        : await (async () => {
          const etag = await currentEtag(`${unleash.api}/client/features`, token);
          return (api: string, max?: number) =>
            luaGet(`${api}/client/features`, { ...token, "If-None-Match": etag }, max);
        })();
      const { r, note } = await measureUnleash(unleash, opts, luaFile, lua);
      rows.push({ name: s.name, r, base: latest });
      extra.push(`- ${s.name}: ${note}`);
      continue;
    }
    const target = {
      embedded: svc,
      warning: quiet,
      direct,
      postgres: pg?.svc,
      "no-near-cache": noNear,
      bare,
      unleash: null,
      "flags-unleash": flagsUnleash,
    }[s.target ?? "embedded"];
    if (!target) {
      if (s.target === "postgres") extra.push(`- skipped "${s.name}": DATABASE_URL not set`);
      continue;
    }
    let lua = s.lua;
    if (s.name === FLAG_NAMES.oursFeatures || s.name === FLAG_NAMES.oursFeatures304) {
      const headers: Record<string, string> = { Authorization: "any-client-key" };
      if (s.name === FLAG_NAMES.oursFeatures304) {
        headers["If-None-Match"] = await currentEtag(`${target.url}${s.path}`, headers);
      }
      lua = luaGet(s.path, headers);
    }
    const o = { ...opts, script: lua ? luaFile(lua) : undefined };
    const isWrite = s.name.startsWith("POST /api/v1/config (create");
    if (!isWrite) {
      await baseline();
      await wrk(`${target.url}${s.path}`, { ...o, durationS: 2 });
    }
    rows.push({ name: s.name, r: await wrk(`${target.url}${s.path}`, o), base: latest });
  }
  // The baseline again, after every row: a drift beyond a few % means the machine changed
  // under the run and its ratios should not be trusted.
  const closing = await wrk(`${bare.url}/`, opts);
  const drift = (closing.rps / base.rps - 1) * 100;
  extra.push(
    `- baseline at the end of the rows: ${Math.round(closing.rps)} req/s ` +
      `(${drift >= 0 ? "+" : ""}${drift.toFixed(1)} % against the opening ${Math.round(base.rps)})`,
  );
  if (!values["skip-extra"] && wanted("SSE")) extra.push(await sseFanout(2000, 20));
  if (!values["skip-extra"] && wanted("RSS")) extra.push(await rssWithCachedEntries(100_000));
  if (!values["skip-extra"] && wanted("registry")) extra.push(await registryBench());
  if (!values["skip-extra"] && wanted("slow")) extra.push(await serviceSlowBodies());
  if (!values["skip-extra"] && wanted("console")) extra.push(await consolePage());

  console.log(
    `\n${opts.connections} connections, ${opts.durationS} s per row, wrk -t1, ` +
      `${WRK_CPU === null ? "" : `pinned to CPU ${WRK_CPU}, `}` +
      `${SERVER_CPU === null ? "servers unpinned" : `every server on CPU ${SERVER_CPU}`}, ` +
      `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  console.log(
    "| scenario | req/s | p50 ms | p99 ms | errors | baseline just before | ratio to baseline |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const { name, r, base: b } of rows) {
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ` +
        `${r.errors} | ${Math.round(b)} | ${(r.rps / b).toFixed(2)}× |`,
    );
  }
  const rps = (name: string) => rows.find((r) => r.name === name)?.r.rps;
  const hot = rows.find((r) => r.name === HOT_KEY);
  const hotQuiet = rows.find((r) => r.name === HOT_KEY_WARNING);
  if (hot && hotQuiet) {
    const gap = hotQuiet.r.rps / hotQuiet.base - hot.r.rps / hot.base;
    extra.push(
      `- request log cost, hot key: ${(hot.r.rps / hot.base).toFixed(2)}× at LOG_LEVEL=INFO ` +
        `(default) vs ${(hotQuiet.r.rps / hotQuiet.base).toFixed(2)}× at WARNING, ` +
        `${gap.toFixed(2)} apart (target: within 0.05)`,
    );
  }
  const ratio = (a?: number, b?: number) => a && b ? `${(a / b).toFixed(2)}×` : "n/a";
  const rowRatio = (name: string) => {
    const row = rows.find((r) => r.name === name);
    return row ? row.r.rps / row.base : undefined;
  };
  const [hotRelay, hotDirect] = [rowRatio(HOT_KEY), rowRatio(HOT_KEY_DIRECT)];
  const [evalRelay, evalDirect] = [
    rowRatio(FLAG_NAMES.evaluate),
    rowRatio(FLAG_NAMES.evaluateDirect),
  ];
  if (hotRelay && hotDirect) {
    extra.push(
      `- h2c relay cost (HTTP_H2C_COMPAT=true, the default): hot key ${hotRelay.toFixed(2)}× ` +
        `vs ${hotDirect.toFixed(2)}× with Deno.serve alone` +
        (evalRelay && evalDirect
          ? `; evaluate ${evalRelay.toFixed(2)}× vs ${evalDirect.toFixed(2)}×`
          : ""),
    );
  }
  const barePost = rps(FLAG_NAMES.barePost);
  const evalRow = rows.find((r) => r.name === FLAG_NAMES.evaluate);
  if (barePost && (rps(FLAG_NAMES.evaluate) || rps(FLAG_NAMES.bulk))) {
    extra.push(
      `- flags against the bare POST baseline (${Math.round(barePost)} req/s): evaluate ` +
        `${ratio(rps(FLAG_NAMES.evaluate), barePost)}, bulk of ${FLAG_COUNT} ` +
        `${ratio(rps(FLAG_NAMES.bulk), barePost)} (target: evaluate ≥ 0.5× of the GET baseline ` +
        `measured before it, ${Math.round(evalRow?.base ?? 0)} req/s: ` +
        `${ratio(evalRow?.r.rps, evalRow?.base)})`,
    );
  }
  // Unleash's successful answers only: a 429 from its rate limiter evaluates nothing.
  const u = rows.find((r) => r.name === FLAG_NAMES.unleash)?.r;
  const theirs = u ? (u.requests - u.errors) / u.seconds : undefined;
  if (theirs) {
    const ours = rps(FLAG_NAMES.oursBulk);
    extra.push(
      `- Unleash comparison, ${FLAG_COUNT} flags for one context per request: our bulk ` +
        `${Math.round(ours ?? 0)} req/s vs Unleash's frontend API ${Math.round(theirs)} req/s ` +
        `= ${ratio(ours, theirs)} (target ≥ 3×); our single evaluate ` +
        `${Math.round(rps(FLAG_NAMES.oursOne) ?? 0)} req/s = ` +
        `${ratio(rps(FLAG_NAMES.oursOne), theirs)}. Unleash evaluates every flag of its ` +
        `${FLAG_ENV} environment (${unleashFlagCount}, ${FLAG_COUNT} of them the bench flags)`,
    );
    const front = rps(FLAG_NAMES.oursFrontend);
    if (front) {
      extra.push(
        `- the same API on both, GET /api/frontend: ours ${Math.round(front)} req/s vs ` +
          `Unleash's ${Math.round(theirs)} req/s = ${ratio(front, theirs)}; bulk of ` +
          `${FLAG_COUNT} vs Unleash's frontend API ${ratio(ours, theirs)} (target ≥ 15×)`,
      );
    }
  }
  const okRate = (name: string) => {
    const r = rows.find((x) => x.name === name)?.r;
    return r ? (r.requests - r.errors) / r.seconds : undefined;
  };
  for (
    const [o, t] of [
      [FLAG_NAMES.oursFeatures, FLAG_NAMES.unleashFeatures],
      [FLAG_NAMES.oursFeatures304, FLAG_NAMES.unleashFeatures304],
    ]
  ) {
    const theirsOk = okRate(t);
    if (theirsOk && rps(o)) {
      extra.push(`- ${o}: ${ratio(rps(o), theirsOk)} of Unleash's (its 2xx/3xx answers only)`);
    }
  }
  if (extra.length) console.log("\n" + extra.join("\n"));
} finally {
  await Promise.allSettled([
    bare.stop(),
    svc.stop(),
    quiet?.stop(),
    direct?.stop(),
    noNear.stop(),
    pg?.drop(),
    flagsUnleash?.stop(),
  ]);
  for (const f of tmpFiles) Deno.removeSync(f);
}
