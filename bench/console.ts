/**
 * The web console's configuration page with 10,000 entries (issue 17): wrk at 10 connections on
 * `GET /ui/config?environment=development&page=N` rotating over the 200 pages of 50, the
 * service at its default settings. Target p99 < 50 ms. `deno run -A bench/console.ts`.
 *
 * It also reports the service's CPU time per request by thread (Linux): the service is pinned to
 * one core, so every thread's CPU adds to the queueing of the 10 connections, and on a shared,
 * noisy machine CPU per request moves far less from run to run than the latency percentiles.
 */
import { type Child, spawnService } from "./service.ts";
import { wrk } from "./wrk.ts";

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function createAll(svc: Child, n: number, concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      const r = await fetch(`${svc.url}/api/v1/config`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          key: `bench.console.key-${String(i).padStart(5, "0")}`,
          value: { n: i, tags: ["a", "b"], enabled: i % 2 === 0 },
          environment: "development",
          ...(i % 4 === 0 ? { service_name: `svc-${i % 20}` } : {}),
        }),
      });
      await r.body?.cancel();
      if (r.status !== 201) throw new Error(`create ${i}: ${r.status}`);
    }
  }));
}

/**
 * CPU milliseconds used so far by each thread of process `pid`, by `tid name` (Linux
 * `/proc/<pid>/task/<tid>/stat`: utime + stime in clock ticks of 10 ms, USER_HZ being 100 there);
 * null where /proc is not readable.
 */
function threadCpuMs(pid: number): Map<string, number> | null {
  try {
    const out = new Map<string, number>();
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
      // The name is in parentheses and may hold spaces; the fields after it are numbered from
      // the state (0): utime is 11, stime 12.
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${t.name} ${name}`, (Number(f[11]) + Number(f[12])) * 10);
    }
    return out;
  } catch {
    return null;
  }
}

/**
 * The CPU each kind of thread used between two {@link threadCpuMs} readings, per request:
 * the HTTP (main) thread, the actors' workers (and the busiest one: the ConfigActor's here),
 * V8's helper threads (concurrent GC, compilers) and anything else.
 */
function cpuPerRequest(
  pid: number,
  before: Map<string, number>,
  after: Map<string, number>,
  requests: number,
): string {
  let main = 0, workers = 0, busiest = 0, v8 = 0, other = 0;
  for (const [k, ms] of after) {
    const used = ms - (before.get(k) ?? 0);
    const [tid, ...rest] = k.split(" ");
    const name = rest.join(" ");
    if (Number(tid) === pid) main += used;
    else if (name.startsWith("worker-")) {
      workers += used;
      busiest = Math.max(busiest, used);
    } else if (name.startsWith("V8 ")) v8 += used;
    else other += used;
  }
  const per = (ms: number) => (ms / requests).toFixed(2);
  return `CPU ${per(main + workers + v8 + other)} ms a request (HTTP thread ${per(main)}, ` +
    `actors ${per(workers)} of which the busiest ${per(busiest)}, V8 helpers ${per(v8)})`;
}

export async function consolePage(entries = 10_000, durationS = 10): Promise<string> {
  const svc = await spawnService();
  const lua = Deno.makeTempFileSync({ suffix: ".lua" });
  try {
    const t0 = performance.now();
    await createAll(svc, entries, 20);
    const createS = (performance.now() - t0) / 1000;
    const pages = Math.ceil(entries / 50);
    const sample = await (await fetch(`${svc.url}/ui/config?environment=development&page=7`))
      .text();
    const rows = (sample.match(/<tr>/g) ?? []).length - 1;
    Deno.writeTextFileSync(
      lua,
      `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/ui/config?environment=development&page=" .. (n % ${pages}))
end
`,
    );
    const o = { durationS, connections: 10, threads: 1, script: lua };
    await wrk(`${svc.url}/`, { ...o, durationS: 2 });
    const pid = svc.child.pid;
    const before = threadCpuMs(pid);
    const r = await wrk(`${svc.url}/`, o);
    const after = threadCpuMs(pid);
    const cpu = before && after ? `; ${cpuPerRequest(pid, before, after, r.requests)}` : "";
    return `- console: GET /ui/config (${rows} rows a page) over ${fmt(entries)} entries ` +
      `(created in ${createS.toFixed(1)} s), wrk -t1 -c10 ${durationS} s rotating over ${pages} ` +
      `pages: ${fmt(r.rps)} req/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ` +
      `${r.errors} errors (target p99 < 50 ms: ${
        r.p99_ms < 50 && r.errors === 0 ? "met" : "NOT met"
      })${cpu}`;
  } finally {
    Deno.removeSync(lua);
    await svc.stop();
  }
}

if (import.meta.main) console.log(await consolePage());
