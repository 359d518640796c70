/**
 * Work for clients that are gone (issue 11, item 4): fills one scope with ~800 KB (400
 * entries of ~2 KB), then sends 3,000 `GET /api/v1/config?environment=…` list requests whose
 * clients hang up at once (raw TCP: connect, write the request, close). Reports how long the
 * ConfigActor stays busy (until `/ready` answers 200 quickly again), how `/ready` behaved
 * meanwhile, the list requests by status (from `/metrics`) and the peak RSS.
 *
 *   deno run -A bench/hangup.ts [requests=3000] [concurrency=100]
 *
 * `normal` instead measures with wrk that the ordinary paths are not slower: a cached GET
 * (answered on the HTTP thread, and by the actor with the near cache off), lists of 10 and
 * 400 entries, a bulk read of 50 cached keys and a history.
 *
 *   deno run -A bench/hangup.ts normal [seconds=5]
 */
import { rssMiB, spawnService } from "./service.ts";
import { wrk } from "./wrk.ts";

const NORMAL = Deno.args[0] === "normal";
const ENTRIES = 400;
const VALUE = "x".repeat(2_000);
const ENV = "staging";

const svc = await spawnService();
const pid = svc.child.pid;
const base = svc.url;
try {
  await pool(
    ENTRIES,
    20,
    (i) => create({ key: `k${i}`, value: `${i}-${VALUE}`, environment: ENV }),
  );
  if (NORMAL) await normalPaths(Number(Deno.args[1] ?? 5));
  else await hangups(Number(Deno.args[0] ?? 3_000), Number(Deno.args[1] ?? 100));
} finally {
  await svc.stop();
}

/** The burst of hung-up lists, and what the service did about it. */
async function hangups(requests: number, concurrency: number): Promise<void> {
  const t = performance.now();
  const one = await (await fetch(`${base}/api/v1/config?environment=${ENV}`)).text();
  const listMs = performance.now() - t;
  console.log(
    `scope: ${ENTRIES} entries, list body ${(one.length / 1024).toFixed(0)} KiB, ` +
      `one list ${listMs.toFixed(1)} ms; RSS ${rssMiB(pid).toFixed(0)} MiB`,
  );

  const request = new TextEncoder().encode(
    `GET /api/v1/config?environment=${ENV} HTTP/1.1\r\nHost: bench\r\n\r\n`,
  );
  const t0 = performance.now();
  let peakRss = rssMiB(pid);
  const readies: { at: number; status: number; ms: number }[] = [];
  let sending = true;
  const monitor = (async () => {
    // Until /ready has answered 200 within 250 ms five times in a row after the burst.
    let good = 0;
    while (sending || good < 5) {
      const at = performance.now() - t0;
      peakRss = Math.max(peakRss, rssMiB(pid));
      let status = 0;
      try {
        const r = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(15_000) });
        await r.body?.cancel();
        status = r.status;
      } catch { /* counted as status 0 */ }
      const ms = performance.now() - t0 - at;
      readies.push({ at, status, ms });
      good = !sending && status === 200 && ms < 250 ? good + 1 : 0;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await pool(requests, concurrency, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: svc.port });
    try {
      await conn.write(request);
    } finally {
      conn.close();
    }
  });
  const sentMs = performance.now() - t0;
  sending = false;
  await monitor;
  const busyMs = readies[readies.length - 5].at;
  const bad = readies.filter((r) => r.status !== 200 || r.ms >= 250);
  const worst = Math.max(...readies.map((r) => r.ms));
  const statuses = await listStatuses();
  const t2 = performance.now();
  const after = await fetch(`${base}/api/v1/config?environment=${ENV}`);
  const afterBody = await after.text();
  console.log(
    `${requests} hung-up lists sent in ${(sentMs / 1000).toFixed(1)} s (concurrency ` +
      `${concurrency}); actor busy ~${(busyMs / 1000).toFixed(1)} s after the burst began`,
  );
  console.log(
    `/ready: ${readies.length} probes, ${bad.length} failed or slower than 250 ms ` +
      `(statuses ${JSON.stringify(count(readies.map((r) => r.status)))}), worst ${
        (worst / 1000).toFixed(2)
      } s`,
  );
  console.log(`list responses by status: ${JSON.stringify(statuses)}`);
  console.log(
    `peak RSS ${peakRss.toFixed(0)} MiB; now ${rssMiB(pid).toFixed(0)} MiB; list afterwards ` +
      `${after.status} (${(afterBody.length / 1024).toFixed(0)} KiB) in ${
        (performance.now() - t2).toFixed(1)
      } ms`,
  );
}

/**
 * wrk at 1 and 50 connections on each ordinary path; prints req/s, p50/p99 and the service
 * process's CPU time per request (all its threads), which a busy shared machine skews less.
 */
async function normalPaths(seconds: number): Promise<void> {
  const small = "development";
  await pool(10, 10, (i) => create({ key: `s${i}`, value: { n: i }, environment: small }));
  const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
  const lua = Deno.makeTempFileSync({ suffix: ".lua" });
  Deno.writeTextFileSync(
    lua,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n` +
      `wrk.body = ${JSON.stringify(JSON.stringify({ keys, environment: ENV }))}\n`,
  );
  const noNear = await spawnService({ CONFIG_NEAR_CACHE_ENTRIES: "0" });
  const one = { key: "s1", value: 1, environment: small };
  await fetch(`${noNear.url}/api/v1/config`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(one),
  }).then((r) => r.body?.cancel());
  const paths: [string, string, string?][] = [
    ["GET one key (near cache)", `/api/v1/config/s1?environment=${small}`],
    ["GET one key (actor cache)", `${noNear.url}/api/v1/config/s1?environment=${small}`],
    ["GET list, 10 entries", `/api/v1/config?environment=${small}`],
    ["GET list, 400 entries (869 KiB)", `/api/v1/config?environment=${ENV}`],
    ["POST bulk, 50 cached keys (~100 KiB)", `/api/v1/config/bulk`, lua],
    ["GET history of one key", `/api/v1/config/s1/history?environment=${small}`],
  ];
  try {
    for (const [name, path, script] of paths) {
      for (const connections of [1, 50]) {
        const own = path.startsWith("http");
        const url = own ? path : `${base}${path}`;
        const target = own ? noNear.child.pid : pid;
        await wrk(url, { durationS: 1, connections, threads: 1, script });
        const cpu0 = cpuMs(target);
        const r = await wrk(url, { durationS: seconds, connections, threads: 1, script });
        const cpuUs = (cpuMs(target) - cpu0) * 1000 / r.requests;
        console.log(
          `${name.padEnd(38)} c=${String(connections).padEnd(3)} ${
            r.rps.toFixed(0).padStart(6)
          } req/s  p50 ${r.p50_ms.toFixed(2)} ms  p99 ${r.p99_ms.toFixed(2)} ms  ` +
            `CPU ${cpuUs.toFixed(0)} µs/req  errors ${r.errors}`,
        );
      }
    }
  } finally {
    Deno.removeSync(lua);
    await noNear.stop();
  }
}

async function create(body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${base}/api/v1/config`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await r.body?.cancel();
  if (r.status !== 201) throw new Error(`creating ${body.key} answered ${r.status}`);
}

/** Runs `fn(0…n-1)` with at most `width` at once. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** CPU time (user + system, all threads) a process has used, ms (Linux). */
function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
  return (Number(f[11]) + Number(f[12])) * 10;
}

function count(xs: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** `GET /api/v1/config` responses by status, from the request-duration histogram. */
async function listStatuses(): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("http_request_duration_seconds_count{")) continue;
    if (!line.includes('route="/api/v1/config"') || !line.includes('method="GET"')) continue;
    const status = /status="(\d+)"/.exec(line)?.[1] ?? "?";
    out[status] = (out[status] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return out;
}
