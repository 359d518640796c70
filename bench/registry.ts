/**
 * Service registry benchmarks, each returning one Markdown line:
 *
 * - {@link registerThroughput}: 10,000 registrations (100 services × 100 instances) from 50
 *   concurrent clients, on real ZooKeeper when ZOOKEEPER_HOSTS is set (else the embedded
 *   registry); health checks off, so the instance addresses are never contacted.
 * - {@link discoverLatency}: wrk on GET /api/v1/registry/discover/{name} rotating over 500
 *   services of 20 healthy instances each (10,000 in all), beside a bare Deno.serve baseline
 *   measured in the same run; on embedded, and (ZOOKEEPER_HOSTS set) on ZooKeeper with 2,000
 *   of the instances registered in ZooKeeper by another client (as Curator/Spring do).
 * - {@link schedulerDrift}: 2,000 instances checked every 10 s against one stub server that
 *   records when each instance's /health was hit; reports the spread of the intervals.
 *
 * `deno run -A bench/registry.ts` runs all three (about two minutes).
 */
import { type Child, spawnBare, spawnService } from "./service.ts";
import { wrk } from "./wrk.ts";
import { ZkSession } from "../lib/backends/zookeeper.ts";

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const met = (ok: boolean) => ok ? "met" : "NOT met";

function quantile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * One Deno.serve recording, per path, when it was hit: 200 for `…/health`, 404 for anything
 * else (the default HEALTH_CHECK_ADDITIONAL_ENDPOINTS /ready and /live: 404 = "not provided").
 * An empty HEALTH_CHECK_ADDITIONAL_ENDPOINTS reads as unset (the default), so the probes of
 * the additional endpoints are answered here rather than turned off.
 */
function startStub() {
  const hits = new Map<string, number[]>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const list = hits.get(path);
    if (list) list.push(performance.now());
    else hits.set(path, [performance.now()]);
    return path.endsWith("/health")
      ? new Response("ok")
      : new Response("not provided", { status: 404 });
  });
  return {
    port: server.addr.port,
    hits,
    stop: () => server.shutdown(),
  };
}

/** Runs `n` jobs with `concurrency` workers; returns the wall time and each job's latency. */
async function pool(
  n: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      await job(i);
      latencies.push(performance.now() - s);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds, latencies };
}

/** POSTs a registration; throws on anything but 200/201. */
async function register(svc: Child, body: unknown): Promise<void> {
  const r = await fetch(`${svc.url}/api/v1/registry/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status !== 200 && r.status !== 201) {
    throw new Error(`register answered ${r.status}: ${text.slice(0, 300)}`);
  }
}

/** Waits until GET /ready answers 200 (ZooKeeper session open), up to `ms`. */
async function waitReady(svc: Child, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  let last = "";
  while (Date.now() < end) {
    const r = await fetch(`${svc.url}/ready`);
    last = `${r.status} ${(await r.text()).slice(0, 300)}`;
    if (r.status === 200) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`service not ready after ${ms} ms: ${last}`);
}

/** Removes `path` and everything under it; absent is fine. */
async function zkRemoveTree(s: ZkSession, path: string): Promise<void> {
  for (const c of await s.getChildren(path)) await zkRemoveTree(s, `${path}/${c}`);
  await s.remove(path);
}

/** Removes the run's base path and its leader-election node (`${base}.leader`). */
async function zkCleanup(hosts: string, base: string): Promise<void> {
  const s = new ZkSession(hosts, { sessionTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
  try {
    await s.connect();
    await zkRemoveTree(s, base);
    await zkRemoveTree(s, `${base}.leader`);
  } finally {
    s.close();
  }
}

/** Counts the instance znodes of the services named `${prefix}*` under `base`. */
async function zkCount(hosts: string, base: string, prefix: string): Promise<number> {
  const s = new ZkSession(hosts, { sessionTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
  try {
    await s.connect();
    const services = (await s.getChildren(base)).filter((x) => x.startsWith(prefix));
    const counts = await Promise.all(services.map((x) => s.getChildren(`${base}/${x}`)));
    return counts.reduce((a, c) => a + c.length, 0);
  } finally {
    s.close();
  }
}

/**
 * 1. Registration throughput: `services` × `perService` POSTs with `concurrency` clients.
 * Target ≥ 1,000/s on ZooKeeper.
 */
export async function registerThroughput(
  services = 100,
  perService = 100,
  concurrency = 50,
): Promise<string> {
  const n = services * perService;
  const hosts = Deno.env.get("ZOOKEEPER_HOSTS") ?? "";
  const base = `/cs-bench-${Date.now()}`;
  const svc = await spawnService({
    ZOOKEEPER_HOSTS: hosts,
    ZOOKEEPER_BASE_PATH: base,
    SERVICE_HEALTH_CHECK_ENABLED: "false",
  });
  let znodes: number | null = null;
  let r: Awaited<ReturnType<typeof pool>>;
  let failed = 0;
  let firstError = "";
  try {
    await waitReady(svc);
    r = await pool(n, concurrency, async (i) => {
      try {
        await register(svc, {
          service_name: `bench-svc-${Math.floor(i / perService)}`,
          service_url: `http://10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:8080`,
          metadata: { instance_id: `inst-${i}`, zone: "bench" },
        });
      } catch (err) {
        // Counted, not fatal: a ZooKeeper restart mid-run (other suites do that) shows here.
        failed++;
        firstError ||= err instanceof Error ? err.message : String(err);
      }
    });
    if (hosts) znodes = await zkCount(hosts, base, "bench-svc-");
  } finally {
    await svc.stop();
    if (hosts) {
      await zkCleanup(hosts, base).catch((err) =>
        console.error(`could not remove ${base} from ZooKeeper: ${err}`)
      );
    }
  }
  const ok = n - failed;
  const rate = ok / r.seconds;
  const where = hosts
    ? `on ZooKeeper (${fmt(znodes ?? 0)} znodes found) + SQLite`
    : "on the embedded registry (SQLite; ZOOKEEPER_HOSTS unset, so not the ZooKeeper target)";
  const errors = failed ? `, ${fmt(failed)} failed (first: ${firstError.slice(0, 160)})` : "";
  const p50 = quantile(r.latencies, 0.5).toFixed(1);
  const p99 = quantile(r.latencies, 0.99).toFixed(1);
  return `- registry: ${fmt(n)} registrations (${services} services × ${perService}) ${where} ` +
    `at ${fmt(rate)}/s with ${concurrency} concurrent clients${errors} (p50 ${p50} ms, p99 ` +
    `${p99} ms; target ≥ 1,000/s: ${met(rate >= 1000 && failed === 0)}` +
    `${hosts ? "" : " on embedded only"})`;
}

/**
 * A znode as Spring Cloud Zookeeper writes one (Curator's ServiceInstance JSON), its health
 * URL in its metadata.
 */
function foreignZnode(service: string, id: string, port: number, healthUrl: string): string {
  return JSON.stringify({
    name: service,
    id,
    address: "127.0.0.1",
    port,
    sslPort: null,
    payload: {
      "@class": "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
      id: `${service}-1`,
      name: service,
      metadata: { instance_status: "UP", health_check_url: healthUrl },
    },
    registrationTimeUTC: Date.now(),
    serviceType: "DYNAMIC",
    uriSpec: {
      parts: [
        { value: "scheme", variable: true },
        { value: "://", variable: false },
        { value: "address", variable: true },
        { value: ":", variable: false },
        { value: "port", variable: true },
      ],
    },
  });
}

/**
 * 2. Discover latency: 500 services × 20 healthy instances, wrk -c50 rotating over the
 * names. Target p99 < 5 ms. With `foreignPerService` > 0 (needs ZOOKEEPER_HOSTS) the service
 * runs on ZooKeeper and that many instances of each service are znodes another client wrote
 * (ephemerals of the bench's own session, as a Spring app's are), the rest registered through
 * the API.
 */
export async function discoverLatency(
  services = 500,
  perService = 20,
  durationS = 10,
  connections = 50,
  foreignPerService = 0,
): Promise<string> {
  const hosts = foreignPerService > 0 ? Deno.env.get("ZOOKEEPER_HOSTS") ?? "" : "";
  if (foreignPerService > 0 && !hosts) {
    return "- registry: discover with instances others registered in ZooKeeper: not run " +
      "(ZOOKEEPER_HOSTS unset)";
  }
  const base = `/cs-bench-disc-${Date.now()}`;
  const stub = startStub();
  const bare = await spawnBare();
  const svc = await spawnService({
    SERVICE_HEALTH_CHECK_ENABLED: "true",
    SERVICE_HEALTH_CHECK_INTERVAL: "3600",
    HEALTH_CHECK_MAX_RETRIES: "0",
    ...(hosts ? { ZOOKEEPER_HOSTS: hosts, ZOOKEEPER_BASE_PATH: base } : {}),
  });
  const lua = Deno.makeTempFileSync({ suffix: ".lua" });
  let writer: ZkSession | null = null;
  let foreignNote = "";
  try {
    const n = services * perService;
    const foreignN = services * foreignPerService;
    const isForeign = (i: number) => i % perService >= perService - foreignPerService;
    if (hosts) {
      await waitReady(svc);
      writer = new ZkSession(hosts, { sessionTimeoutMs: 30_000, connectTimeoutMs: 10_000 });
      await writer.connect();
      const w = writer;
      for (let k = 0; k < services; k++) await w.mkdirp(`${base}/disc-${k}`);
      const t0 = performance.now();
      const ids = Array.from({ length: n }, (_, i) => i).filter(isForeign);
      await pool(ids.length, 50, async (j) => {
        const i = ids[j];
        const service = `disc-${Math.floor(i / perService)}`;
        await w.create(
          `${base}/${service}/inst-${i}`,
          foreignZnode(
            service,
            `inst-${i}`,
            stub.port,
            `http://127.0.0.1:${stub.port}/f/${i}/health`,
          ),
          1, // EPHEMERAL
        );
      });
      // Every foreign instance listed by the service: the watches have caught up.
      const seen = async () => {
        const all = await (await fetch(`${svc.url}/api/v1/registry/services`)).json();
        return (all as { instances: { source: string }[] }[])
          .reduce((a, x) => a + x.instances.filter((i) => i.source === "zookeeper").length, 0);
      };
      let found = 0;
      const end = Date.now() + 60_000;
      while ((found = await seen()) < foreignN && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const ms = performance.now() - t0;
      foreignNote = `; ${fmt(found)} of ${fmt(foreignN)} written in ZooKeeper by another ` +
        `client, all listed ${(ms / 1000).toFixed(1)} s after the first was written`;
    }
    await pool(n, 50, (i) =>
      isForeign(i) && hosts ? Promise.resolve() : register(svc, {
        service_name: `disc-${Math.floor(i / perService)}`,
        service_url: `http://127.0.0.1:${stub.port}/i/${i}`,
        metadata: { instance_id: `inst-${i}` },
      }));
    // One manual check per service makes every instance healthy now.
    let healthy = 0;
    await pool(services, 20, async (s) => {
      const r = await fetch(`${svc.url}/api/v1/registry/services/disc-${s}/health`, {
        method: "POST",
      });
      const b = await r.json();
      if (r.status !== 200) throw new Error(`health of disc-${s}: ${r.status}`);
      healthy += b.healthy_instances;
    });
    // Spot check: a discover answer lists its instances.
    const sample = await (await fetch(`${svc.url}/api/v1/registry/discover/disc-7`)).json();
    const listed = sample.instances?.length ?? 0;
    Deno.writeTextFileSync(
      lua,
      `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/registry/discover/disc-" .. (n % ${services}))
end
`,
    );
    const o = { durationS, connections, threads: 1 };
    await wrk(`${bare.url}/`, { ...o, durationS: 2 });
    const baseline = await wrk(`${bare.url}/`, o);
    await wrk(`${svc.url}/`, { ...o, durationS: 2, script: lua });
    const d = await wrk(`${svc.url}/`, { ...o, script: lua });
    // Latency below saturation too: at 50 connections p99 is mostly queueing.
    const light = await wrk(`${svc.url}/`, { ...o, connections: 10, script: lua });
    return `- registry: GET /api/v1/registry/discover/{name} over ${fmt(n)} instances in ` +
      `${services} services (${fmt(healthy)} healthy, ${listed} per answer; ` +
      `${hosts ? `ZooKeeper${foreignNote}` : "embedded"}, ` +
      `wrk -t1 ${durationS} s): at ${connections} connections (saturated) ${fmt(d.rps)} req/s, ` +
      `p50 ${d.p50_ms.toFixed(2)} ms, p99 ${d.p99_ms.toFixed(2)} ms, ${d.errors} errors, ` +
      `${(d.rps / baseline.rps).toFixed(2)}× the bare Deno.serve baseline (${
        fmt(baseline.rps)
      } req/s, ` +
      `p99 ${baseline.p99_ms.toFixed(2)} ms); at 10 connections ${fmt(light.rps)} req/s, p50 ` +
      `${light.p50_ms.toFixed(2)} ms, p99 ${light.p99_ms.toFixed(2)} ms (target p99 < 5 ms: ` +
      `${met(d.p99_ms < 5)} saturated, ${met(light.p99_ms < 5)} at 10 connections)`;
  } finally {
    Deno.removeSync(lua);
    writer?.close();
    await Promise.allSettled([svc.stop(), bare.stop()]);
    await stub.stop();
    if (hosts) {
      await zkCleanup(hosts, base).catch((err) =>
        console.error(`could not remove ${base} from ZooKeeper: ${err}`)
      );
    }
  }
}

/**
 * 3. Scheduler drift: `n` instances checked every `intervalS` for `runS` seconds; per
 * instance, the intervals between the stub's hits on its /health. Target drift < 1 s and
 * every instance checked at least 3 times.
 */
export async function schedulerDrift(n = 2000, intervalS = 10, runS = 35): Promise<string> {
  const stub = startStub();
  const svc = await spawnService({
    SERVICE_HEALTH_CHECK_ENABLED: "true",
    SERVICE_HEALTH_CHECK_INTERVAL: String(intervalS),
    HEALTH_CHECK_TIMEOUT: "2",
  });
  try {
    const reg = await pool(n, 50, (i) =>
      register(svc, {
        service_name: `sched-${Math.floor(i / 100)}`,
        service_url: `http://127.0.0.1:${stub.port}/i/${i}`,
        metadata: { instance_id: `inst-${i}` },
      }));
    await new Promise((r) => setTimeout(r, runS * 1000));
    const counts: number[] = [];
    const intervals: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = stub.hits.get(`/i/${i}/health`) ?? [];
      counts.push(t.length);
      for (let k = 1; k < t.length; k++) intervals.push((t[k] - t[k - 1]) / 1000);
    }
    let extraProbes = 0;
    for (const [p, t] of stub.hits) if (!p.endsWith("/health")) extraProbes += t.length;
    intervals.sort((a, b) => a - b);
    const minChecks = Math.min(...counts);
    const total = counts.reduce((a, b) => a + b, 0);
    const drift = Math.max(...intervals.map((x) => Math.abs(x - intervalS)));
    // The scheduler jitters each period by ±5 % by design; what exceeds that is lateness.
    const band = intervalS * 0.05;
    const beyond = intervals.filter((x) => Math.abs(x - intervalS) > band).length;
    const excess = Math.max(0, drift - band);
    const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
    const ok = drift < 1 && minChecks >= 3;
    return `- registry: health scheduler, ${fmt(n)} stub instances every ${intervalS} s for ` +
      `${runS} s (registered in ${reg.seconds.toFixed(1)} s): ${fmt(total)} checks, each ` +
      `instance checked ≥ ${minChecks}×, ${fmt(intervals.length)} intervals from ` +
      `${intervals[0].toFixed(3)} to ${intervals.at(-1)!.toFixed(3)} s (mean ${mean.toFixed(3)} ` +
      `s), max drift |interval − ${intervalS} s| ${drift.toFixed(4)} s, of which ` +
      `${(excess * 1000).toFixed(1)} ms beyond the designed ±5 % jitter (${beyond} intervals ` +
      `outside it); plus ${fmt(extraProbes)} probes of /ready and /live (404) (target ` +
      `drift < 1 s and ≥ 3 checks each: ${met(ok)}${
        !ok && minChecks >= 3 && drift < band + 0.05
          ? `, by ${((drift - 1) * 1000).toFixed(1)} ms: the scheduler's fixed ±5 % jitter ` +
            `alone spans ±${band} s`
          : ""
      })`;
  } finally {
    await svc.stop();
    await stub.stop();
  }
}

/** All three, one line each. */
export async function registryBench(): Promise<string> {
  return [
    await registerThroughput(),
    await discoverLatency(),
    await discoverLatency(500, 20, 10, 50, 4),
    await schedulerDrift(),
  ].join("\n");
}

if (import.meta.main) {
  // `deno run -A bench/registry.ts discover-zk`: only the ZooKeeper discover row.
  console.log(
    Deno.args[0] === "discover-zk"
      ? await discoverLatency(500, 20, 10, 50, 4)
      : await registryBench(),
  );
}
