/**
 * `deno task bench`: measures, in one run, a bare `Deno.serve` baseline and the service's
 * endpoints with wrk, and prints req/s, p50, p99 and each ratio to the baseline as a
 * Markdown table (the README's benchmark table comes from here).
 *
 * Options: --duration S (default 10), --connections N (default 50), --only NAME[,NAME],
 * --skip-extra (no SSE fan-out / RSS runs). With DATABASE_URL set (the local stack), the
 * write scenario also runs against PostgreSQL in a database of its own.
 *
 * The service runs as its own process with LOG_LEVEL=WARNING (no per-request log line), as
 * does the baseline.
 */
import { parseArgs } from "node:util";
import { wrk, type WrkResult } from "./wrk.ts";
import { type Child, post, spawnBare, spawnService } from "./service.ts";
import { sseFanout } from "./sse_fanout.ts";
import { rssWithCachedEntries } from "./rss.ts";
import { registryBench } from "./registry.ts";
import { createPostgres } from "../lib/backends/postgres.ts";

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
  /** Which service process serves it. */
  target?: "embedded" | "postgres" | "no-near-cache";
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
const SCENARIOS: Scenario[] = [
  { name: "GET /live (all middleware, tiny JSON)", path: "/live" },
  { name: "GET /health (all middleware, no actor hop)", path: "/health" },
  { name: "GET /ready (round trip to 4 actors)", path: "/ready" },
  {
    name: "GET /api/v1/config/{key} (hot key: near cache on the HTTP thread)",
    path: `/api/v1/config/model_path?environment=${ENV}&service_name=asr-service`,
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

const rows: { name: string; r: WrkResult }[] = [];
const extra: string[] = [];
const bare = await spawnBare();
const svc = await spawnService();
const noNear = await spawnService({ CONFIG_NEAR_CACHE_ENTRIES: "0" });
let pg: { svc: Child; drop: () => Promise<void> } | null = null;
try {
  await seed(svc);
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
  const warm = { ...opts, durationS: 2 };
  await wrk(`${bare.url}/`, warm);
  const base = await wrk(`${bare.url}/`, opts);
  rows.push({ name: "bare Deno.serve, small JSON (baseline)", r: base });
  for (const s of SCENARIOS) {
    if (!wanted(s.name)) continue;
    const target = s.target === "postgres" ? pg?.svc : s.target === "no-near-cache" ? noNear : svc;
    if (!target) {
      extra.push(`- skipped "${s.name}": DATABASE_URL not set`);
      continue;
    }
    const o = { ...opts, script: s.lua ? luaFile(s.lua) : undefined };
    const isWrite = s.name.startsWith("POST /api/v1/config (create");
    if (!isWrite) await wrk(`${target.url}${s.path}`, { ...o, durationS: 2 });
    rows.push({ name: s.name, r: await wrk(`${target.url}${s.path}`, o) });
  }
  if (!values["skip-extra"] && wanted("SSE")) extra.push(await sseFanout(2000, 20));
  if (!values["skip-extra"] && wanted("RSS")) extra.push(await rssWithCachedEntries(100_000));
  if (!values["skip-extra"] && wanted("registry")) extra.push(await registryBench());

  console.log(
    `\n${opts.connections} connections, ${opts.durationS} s per row, wrk -t1, ` +
      `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  console.log("| scenario | req/s | p50 ms | p99 ms | errors | ratio to baseline |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const { name, r } of rows) {
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ` +
        `${r.errors} | ${(r.rps / base.rps).toFixed(2)}× |`,
    );
  }
  if (extra.length) console.log("\n" + extra.join("\n"));
} finally {
  await Promise.allSettled([bare.stop(), svc.stop(), noNear.stop(), pg?.drop()]);
  for (const f of tmpFiles) Deno.removeSync(f);
}
