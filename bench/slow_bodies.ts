/**
 * Slow request bodies (issue 11, item 3), `deno run -A bench/slow_bodies.ts [--skip-hot]`:
 *
 * 1. 1,000 connections each send a POST head with `content-length: 1000000` and then a byte
 *    (then 100 more): the server's RSS before and after, and the p50/p99 of a sequential GET
 *    while they are open, for a server reading bodies with `req.text()`, with a BodyReader
 *    whose budget admits them all, and with one on the default 64 MiB budget.
 * 2. The hot path (needs wrk): 200-byte POSTs with a content-length, `req.text()` against a
 *    BodyReader: req/s and the server's CPU time per request (the steadier figure on a
 *    shared machine).
 *
 * Servers run tests/fixtures/body_server.ts with the runtime flags of `deno task start`.
 * Every server first reads three whole 1 MB bodies, as a running service has: glibc then
 * serves later large buffers from its heap (touched when zeroed) instead of fresh mappings.
 */
import { wrk, WRK_CPU } from "./wrk.ts";
import {
  type BodyServer,
  getLatencies,
  percentile,
  rssMiB,
  spawnBodyServer,
  stallBodies,
} from "../tests/_slow_body.ts";

const CONNECTIONS = 1000;
const DECLARED = 1_000_000;

interface Case {
  name: string;
  mode: "text" | "reader";
  env: Record<string, string>;
}

const cases: Case[] = [
  { name: "req.text()", mode: "text", env: {} },
  {
    name: "BodyReader, all admitted (budget 2 GB)",
    mode: "reader",
    env: { BODY_BUDGET_BYTES: "2000000000", BODY_IDLE_MS: "120000" },
  },
  {
    name: "BodyReader, budget 64 MiB",
    mode: "reader",
    env: { BODY_BUDGET_BYTES: String(64 * 1024 * 1024), BODY_IDLE_MS: "120000" },
  },
];

async function warm(server: BodyServer): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${server.url}/warm`, { method: "POST", body: "x".repeat(DECLARED) });
    await r.arrayBuffer();
  }
  await getLatencies(`${server.url}/health`, 200);
  await new Promise((r) => setTimeout(r, 500));
}

async function slowBodies(c: Case): Promise<Record<string, string | number>> {
  const server = await spawnBodyServer(c.mode, c.env);
  try {
    await warm(server);
    const before = rssMiB(server.pid);
    const idle = percentile(await getLatencies(`${server.url}/health`, 300), 99);
    const stalled = await stallBodies(server.port, CONNECTIONS, DECLARED);
    try {
      await stalled.trickle(1);
      await new Promise((r) => setTimeout(r, 2000));
      const afterByte = rssMiB(server.pid);
      const during = await getLatencies(`${server.url}/health`, 300);
      await stalled.trickle(100);
      await new Promise((r) => setTimeout(r, 2000));
      const after101 = rssMiB(server.pid);
      const answered = await stalled.statuses(500);
      return {
        case: c.name,
        "RSS before MiB": before.toFixed(0),
        "+ after 1 byte": (afterByte - before).toFixed(0),
        "+ after 101 bytes": (after101 - before).toFixed(0),
        "GET p99 idle ms": idle.toFixed(2),
        "GET p50 during": percentile(during, 50).toFixed(2),
        "GET p99 during": percentile(during, 99).toFixed(2),
        "slow bodies answered": Object.entries(answered).map(([k, v]) => `${k}:${v}`).join(" "),
      };
    } finally {
      stalled.close();
    }
  } finally {
    await server.stop();
  }
}

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const POST_SCRIPT = `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = ${
  JSON.stringify(JSON.stringify({
    flag_name: "new-checkout-flow",
    context: {
      userId: "user-123456",
      environment: "production",
      properties: { region: "eu-west-1", plan: "enterprise", beta: true, pad: "xxxxxxxxxx" },
    },
    default: false,
  }))
}
`;

async function hotPath(mode: "text" | "reader", script: string) {
  const server = await spawnBodyServer(mode, {});
  try {
    await wrk(`${server.url}/p`, { durationS: 2, connections: 32, threads: 1, script });
    const cpu0 = cpuSeconds(server.pid);
    const r = await wrk(`${server.url}/p`, { durationS: 8, connections: 32, threads: 1, script });
    const cpu = cpuSeconds(server.pid) - cpu0;
    return { rps: r.rps, p99: r.p99_ms, errors: r.errors, usPerReq: cpu * 1e6 / r.requests };
  } finally {
    await server.stop();
  }
}

const rows = [];
for (const c of cases) rows.push(await slowBodies(c));
console.log(
  `${CONNECTIONS} connections, each a POST head with content-length ${DECLARED} then 1 (then 101) bytes:`,
);
console.table(rows);

if (!Deno.args.includes("--skip-hot")) {
  const script = Deno.makeTempFileSync({ suffix: ".lua" });
  Deno.writeTextFileSync(script, POST_SCRIPT);
  const hot: Record<string, string | number>[] = [];
  try {
    for (let round = 1; round <= 3; round++) {
      for (const mode of ["text", "reader"] as const) {
        const r = await hotPath(mode, script);
        hot.push({
          round,
          read: mode === "text" ? "req.text()" : "BodyReader",
          "req/s": Math.round(r.rps),
          "p99 ms": r.p99.toFixed(2),
          errors: r.errors,
          "server CPU µs/req": r.usPerReq.toFixed(2),
        });
      }
    }
    console.log(
      `\n${JSON.parse(POST_SCRIPT.split("wrk.body = ")[1]).length}-byte POSTs, wrk -c32 ` +
        `(pinned to CPU ${WRK_CPU ?? "none"}), 8 s each:`,
    );
    console.table(hot);
  } catch (err) {
    console.log(`hot path skipped: ${(err as Error).message}`);
  } finally {
    Deno.removeSync(script);
  }
}
