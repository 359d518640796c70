/**
 * Slow request heads (issue 11, item 3), `deno run -A bench/slow_headers.ts [--wait S]`:
 *
 * 1. Whether Deno.serve ever closes a connection that sent part of a request head, one that
 *    sent nothing, and one that sent a head declaring a body it never sends (waits S s, 70).
 * 2. What 1,000 and 10,000 unfinished heads cost a bare Deno.serve: RSS and a GET's p99.
 * 3. The one in-process way found to time out heads: accept connections with Deno.listen and
 *    serve each with Deno's internal `serveHttpOnConnection`, aborting it when no request has
 *    started within a timeout of the accept or of the previous response. Its cost per request
 *    against Deno.serve (server CPU per GET under wrk), and that it closes a stalled head.
 *
 * `--serve plain|guarded [timeoutMs]` runs one of the servers of 3 (used by this script).
 */
import { wrk } from "./wrk.ts";
import { getLatencies, percentile, rssMiB } from "../tests/_slow_body.ts";

const enc = new TextEncoder();

if (Deno.args[0] === "--serve") {
  serve(Deno.args[1] === "guarded", Number(Deno.args[2] ?? 10_000));
} else {
  await main();
}

/** The servers of part 3: both answer "ok" to everything and print their port and pid. */
function serve(guarded: boolean, timeoutMs: number): void {
  const handler = () => new Response("ok");
  const listening = (port: number) => console.log(JSON.stringify({ port, pid: Deno.pid }));
  if (!guarded) {
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => listening(port) },
      handler,
    );
    return;
  }
  const internal = (Deno as unknown as Record<symbol, Record<string, unknown>>)[
    (Deno as unknown as { internal: symbol }).internal
  ];
  const serveOn = internal?.serveHttpOnConnection as (
    conn: Deno.Conn,
    signal: AbortSignal,
    handler: (req: Request, info: Deno.ServeHandlerInfo) => Response,
    onError: () => Response,
    onListen: () => void,
  ) => { finished: Promise<void> };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listening((listener.addr as Deno.NetAddr).port);
  (async () => {
    for await (const conn of listener) {
      const abort = new AbortController();
      let closed = false;
      let active = 0;
      // Aborting a connection Deno has already closed throws from inside the abort event.
      const expire = () => closed || abort.abort();
      let timer = setTimeout(expire, timeoutMs);
      const done = () => {
        if (--active === 0 && !closed) timer = setTimeout(expire, timeoutMs);
      };
      const server = serveOn(
        conn,
        abort.signal,
        (_req, info) => {
          if (active++ === 0) clearTimeout(timer);
          info.completed.then(done, done);
          return handler();
        },
        () => new Response(null, { status: 500 }),
        () => {},
      );
      server.finished.catch(() => {}).finally(() => {
        closed = true;
        clearTimeout(timer);
      });
    }
  })();
}

async function spawnServer(mode: "plain" | "guarded", timeoutMs = 10_000) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--serve", mode, String(timeoutMs)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { port, pid } = JSON.parse((await lines.read()).value!.split("\n")[0]);
  return {
    port: port as number,
    pid: pid as number,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill();
      await child.status;
      await lines.cancel();
    },
  };
}

/** Sends `text` on a new connection and reports when (if) the server closes it. */
async function closedWithin(port: number, text: string, waitS: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  if (text) await conn.write(enc.encode(text));
  const t0 = performance.now();
  const timer = setTimeout(() => conn.close(), waitS * 1000);
  let closedByServer = false;
  try {
    while (true) {
      const n = await conn.read(new Uint8Array(1024));
      if (n === null) {
        closedByServer = true;
        break;
      }
    }
  } catch { /* closed by the timer */ }
  clearTimeout(timer);
  if (closedByServer) conn.close();
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  return closedByServer ? `closed by the server after ${s} s` : `still open after ${s} s`;
}

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main() {
  const i = Deno.args.indexOf("--wait");
  const waitS = i >= 0 ? Number(Deno.args[i + 1]) : 70;

  // 1.
  const plain = await spawnServer("plain");
  const heads = await Promise.all([
    closedWithin(plain.port, "POST / HTTP/1.1\r\nHost: x\r\n", waitS),
    closedWithin(plain.port, "", waitS),
    closedWithin(plain.port, "POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 10\r\n\r\n", waitS),
  ]);
  console.log(`Deno ${Deno.version.deno}, Deno.serve:`);
  console.log(`  part of a request head, then nothing: ${heads[0]}`);
  console.log(`  nothing at all:                       ${heads[1]}`);
  console.log(`  a head declaring 10 body bytes, none: ${heads[2]}`);

  // 2.
  const rows = [];
  for (const [count, pad] of [[1000, 0], [1000, 60_000], [10_000, 0]]) {
    await getLatencies(`${plain.url}/`, 200);
    const before = rssMiB(plain.pid);
    const conns: Deno.Conn[] = [];
    const head = enc.encode(
      "POST / HTTP/1.1\r\nHost: x\r\n" + (pad ? `x-pad: ${"p".repeat(pad)}\r\n` : ""),
    );
    for (let k = 0; k < count; k++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
      conns.push(c);
      await c.write(head);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const grown = rssMiB(plain.pid) - before;
    const p99 = percentile(await getLatencies(`${plain.url}/`, 300), 99);
    rows.push({
      "unfinished heads": count,
      "head bytes sent": head.length,
      "RSS + MiB": grown.toFixed(1),
      "KiB each": (grown * 1024 / count).toFixed(1),
      "GET p99 ms": p99.toFixed(2),
    });
    for (const c of conns) c.close();
    await new Promise((r) => setTimeout(r, 500));
  }
  await plain.stop();
  console.table(rows);

  // 3.
  const guarded = await spawnServer("guarded", 2000);
  console.log(
    `own accept loop + serveHttpOnConnection, 2 s timeout: part of a head, then nothing: ${await closedWithin(
      guarded.port,
      "POST / HTTP/1.1\r\nHost: x\r\n",
      10,
    )}`,
  );
  await guarded.stop();
  const cost = [];
  for (let round = 1; round <= 3; round++) {
    for (const mode of ["plain", "guarded"] as const) {
      const s = await spawnServer(mode);
      try {
        await wrk(`${s.url}/`, { durationS: 2, connections: 32, threads: 1 });
        const cpu0 = cpuSeconds(s.pid);
        const r = await wrk(`${s.url}/`, { durationS: 8, connections: 32, threads: 1 });
        cost.push({
          round,
          server: mode === "plain" ? "Deno.serve" : "accept loop + serveHttpOnConnection",
          "req/s": Math.round(r.rps),
          "p99 ms": r.p99_ms.toFixed(2),
          "server CPU µs/req": ((cpuSeconds(s.pid) - cpu0) * 1e6 / r.requests).toFixed(2),
        });
      } finally {
        await s.stop();
      }
    }
  }
  console.table(cost);
}
