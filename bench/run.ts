/**
 * `deno task bench`: measures, in one run, a bare `Deno.serve` baseline and the service's
 * endpoints with wrk, and prints req/s, p50, p99 and each ratio to the baseline as a
 * Markdown table (the README's benchmark table comes from here).
 *
 * Options: --duration S (default 10), --connections N (default 50), --only NAME[,NAME].
 * The service runs as its own process on the embedded defaults with LOG_LEVEL=WARNING
 * (no per-request log line), as does the baseline.
 */
import { parseArgs } from "node:util";
import { wrk, type WrkResult } from "./wrk.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "50" },
    only: { type: "string" },
  },
});
const opts = {
  durationS: Number(values.duration),
  connections: Number(values.connections),
  threads: 1,
};

async function spawn(args: string[], env: Record<string, string>, marker: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${args.join(" ")} exited before listening`);
    buf += value;
    const line = buf.split("\n").find((l) => l.includes(marker));
    if (line) {
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })();
      return { child, port: JSON.parse(line).port as number };
    }
  }
}

interface Scenario {
  name: string;
  path: string;
}

const SCENARIOS: Scenario[] = [
  { name: "GET /live (all middleware, tiny JSON)", path: "/live" },
  { name: "GET /health (all middleware, no actor hop)", path: "/health" },
  { name: "GET /ready (round trip to 4 actors)", path: "/ready" },
];

const root = new URL("..", import.meta.url).pathname;
const bare = await spawn(["run", "-A", `${root}bench/bare_server.ts`], {}, "bare listening");
const dataDir = await Deno.makeTempDir({ prefix: "cs-bench-" });
const svc = await spawn(["run", "-A", `${root}main.ts`], {
  SERVICE_PORT: "0",
  SERVICE_HOST: "127.0.0.1",
  DATA_DIR: dataDir,
  LOG_LEVEL: "WARNING",
}, "config-service listening");

const rows: { name: string; r: WrkResult }[] = [];
try {
  const only = values.only?.split(",");
  const warm = { ...opts, durationS: 2 };
  await wrk(`http://127.0.0.1:${bare.port}/`, warm);
  const base = await wrk(`http://127.0.0.1:${bare.port}/`, opts);
  rows.push({ name: "bare Deno.serve, small JSON (baseline)", r: base });
  for (const s of SCENARIOS) {
    if (only && !only.some((o) => s.name.includes(o) || s.path.includes(o))) continue;
    await wrk(`http://127.0.0.1:${svc.port}${s.path}`, warm);
    rows.push({ name: s.name, r: await wrk(`http://127.0.0.1:${svc.port}${s.path}`, opts) });
  }
  const baseRps = base.rps;
  const cpu = Deno.osRelease();
  console.log(
    `\n${opts.connections} connections, ${opts.durationS} s each, wrk -t1, ` +
      `${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, kernel ${cpu}\n`,
  );
  console.log("| scenario | req/s | p50 ms | p99 ms | errors | ratio to baseline |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const { name, r } of rows) {
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ` +
        `${r.errors} | ${(r.rps / baseRps).toFixed(2)}× |`,
    );
  }
} finally {
  for (const c of [bare.child, svc.child]) {
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    await c.status;
  }
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
