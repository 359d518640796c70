/**
 * The web console's configuration page with 10,000 entries (issue 17): wrk at 10 connections on
 * `GET /ui/config?environment=development&page=N` rotating over the 200 pages of 50, the
 * service at its default settings. Target p99 < 50 ms. `deno run -A bench/console.ts`.
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
    const r = await wrk(`${svc.url}/`, o);
    return `- console: GET /ui/config (${rows} rows a page) over ${fmt(entries)} entries ` +
      `(created in ${createS.toFixed(1)} s), wrk -t1 -c10 ${durationS} s rotating over ${pages} ` +
      `pages: ${fmt(r.rps)} req/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ` +
      `${r.errors} errors (target p99 < 50 ms: ${
        r.p99_ms < 50 && r.errors === 0 ? "met" : "NOT met"
      })`;
  } finally {
    Deno.removeSync(lua);
    await svc.stop();
  }
}

if (import.meta.main) console.log(await consolePage());
