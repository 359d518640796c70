/**
 * What answering h2c upgrade requests costs (issue 15, item 1; `deno run -A bench/h2c.ts`).
 * Bare `Deno.serve` refuses every h2c upgrade request with a body (lib/http/h2c.ts says why);
 * the candidates that answer them, measured in one run against it, each server on one CPU and
 * wrk on the other (wrk.ts), 50 connections, 5 s (`BENCH_H2C_SECONDS`):
 *
 * - `front`: lib/http/h2c.ts, the service's server: a TCP relay before `Deno.serve` that
 *   drops the upgrade headers from the heads that carry them.
 * - `node:http`: a `node:http` server with a handler written for it (no `Request`/`Response`
 *   conversion, which an adapter for `app.fetch` would add): an upper bound for serving the
 *   app on `node:http`.
 * - `relay only`: the front's relay without following the framing, to split its cost.
 * - the service's routes (`GET /live`, `POST /api/v1/feature-flags/evaluate`): `main.ts` on
 *   its embedded defaults at `LOG_LEVEL=WARNING`, with `HTTP_H2C_COMPAT=false` (bare
 *   `Deno.serve`) and `true` (the front).
 *
 * Prints a Markdown table with each row's ratio to bare `Deno.serve` on the same request.
 * Run as `bench/h2c.ts serve <mode>`, it is the server of one row.
 */
import { relayServe, serve } from "../lib/http/h2c.ts";
import { spawnChild, spawnService } from "./service.ts";
import { SERVER_CPU, wrk, WRK_CPU, type WrkResult } from "./wrk.ts";

const SMALL = JSON.stringify({ status: "healthy", service: "config-service", version: "1.0.0" });
const JSON_HEADERS = { "content-type": "application/json" };
const POST_BODY = JSON.stringify({
  flag_name: "checkout",
  environment: "development",
  context: { user_id: "u1" },
});
const MARKER = "h2c bench listening";

/** The baseline's handler (bench/bare_server.ts): a small JSON document, or the POST's
 * parsed body's `flag_name`. */
async function small(req: Request): Promise<Response> {
  if (req.method !== "POST") return new Response(SMALL, { headers: JSON_HEADERS });
  const b = await req.json() as { flag_name?: unknown };
  return new Response(JSON.stringify({ flag_name: b.flag_name ?? null, value: true }), {
    headers: JSON_HEADERS,
  });
}

const listening = (port: number) => console.log(JSON.stringify({ msg: MARKER, port }));

/** The front's relay alone: every byte through, no framing, no rewriting. */
async function relayOnly(): Promise<void> {
  const inner = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, small);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listening((listener.addr as Deno.NetAddr).port);
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    for (let n; (n = await from.read(buf)) !== null;) {
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
    }
  };
  for await (const client of listener) {
    (async () => {
      const up = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
      client.setNoDelay(true);
      up.setNoDelay(true);
      const end = () => {
        for (const c of [client, up]) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      };
      await Promise.all([pump(client, up).then(end, end), pump(up, client).then(end, end)]);
    })();
  }
}

async function nodeHttp(): Promise<void> {
  const http = await import("node:http");
  const server = http.createServer((req, res) => {
    if (req.method !== "POST") {
      res.writeHead(200, JSON_HEADERS).end(SMALL);
      return;
    }
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("end", () => {
      const b = JSON.parse(new TextDecoder().decode(concat(chunks))) as { flag_name?: unknown };
      res.writeHead(200, JSON_HEADERS)
        .end(JSON.stringify({ flag_name: b.flag_name ?? null, value: true }));
    });
  });
  server.listen(0, "127.0.0.1", () => listening((server.address() as { port: number }).port));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

if (Deno.args[0] === "serve") {
  const mode = Deno.args[1];
  const options = {
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }: Deno.NetAddr) => listening(port),
  };
  if (mode === "bare") Deno.serve(options, small);
  else if (mode === "front") serve(options, small);
  else if (mode === "relay-front") relayServe(options, small);
  else if (mode === "relay") await relayOnly();
  else if (mode === "node") await nodeHttp();
  else throw new Error(`unknown mode ${mode}`);
} else {
  await main();
}

function luaPost(path: string, extra: Record<string, string> = {}): string {
  const f = Deno.makeTempFileSync({ suffix: ".lua" });
  const headers = { "Content-Type": "application/json", ...extra };
  Deno.writeTextFileSync(
    f,
    [
      `wrk.method = "POST"`,
      `wrk.path = "${path}"`,
      `wrk.body = '${POST_BODY}'`,
      ...Object.entries(headers).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
    ].join("\n"),
  );
  return f;
}

function luaGet(path: string, extra: Record<string, string>): string {
  const f = Deno.makeTempFileSync({ suffix: ".lua" });
  Deno.writeTextFileSync(
    f,
    [
      `wrk.path = "${path}"`,
      ...Object.entries(extra).map(([k, v]) => `wrk.headers["${k}"] = "${v}"`),
    ]
      .join("\n"),
  );
  return f;
}

async function main(): Promise<void> {
  const seconds = Number(Deno.env.get("BENCH_H2C_SECONDS") ?? 5);
  const H2C = {
    Connection: "Upgrade, HTTP2-Settings",
    Upgrade: "h2c",
    "HTTP2-Settings": "AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA",
  };
  interface Row {
    server: string;
    request: string;
    result: WrkResult;
    baseline: WrkResult;
  }
  const rows: Row[] = [];
  const scripts: string[] = [];
  const script = (f: string) => (scripts.push(f), f);
  const measure = async (mode: string, url: (c: { url: string }) => string, lua?: string) => {
    // The service itself (main.ts, embedded defaults) with the front on or off.
    const child = mode.startsWith("app-")
      ? await spawnService({ HTTP_H2C_COMPAT: String(mode === "app-front"), LOG_LEVEL: "WARNING" })
      : await spawnChild("bench/h2c.ts", {}, MARKER, ["serve", mode]);
    try {
      // Warm-up: JIT and connection setup stay out of the figure.
      await wrk(url(child), { durationS: 1, connections: 50, threads: 1, script: lua });
      return await wrk(url(child), {
        durationS: seconds,
        connections: 50,
        threads: 1,
        script: lua,
      });
    } finally {
      await child.stop();
    }
  };
  /** `against`: the request whose baseline the rows are compared with, when bare Deno.serve
   * refuses this one. */
  const cases: {
    request: string;
    path: string;
    modes: string[];
    base: string;
    lua?: string;
    against?: string;
  }[] = [
    {
      request: "GET small JSON",
      path: "/",
      modes: ["front", "relay-front", "relay", "node"],
      base: "bare",
    },
    {
      request: "POST small JSON",
      path: "/",
      modes: ["front", "relay-front", "relay", "node"],
      base: "bare",
      lua: script(luaPost("/")),
    },
    {
      request: "GET small JSON, h2c upgrade headers",
      path: "/",
      modes: ["front", "node"],
      base: "bare",
      lua: script(luaGet("/", H2C)),
      against: "GET small JSON",
    },
    {
      request: "POST small JSON, h2c upgrade headers",
      path: "/",
      modes: ["front", "node"],
      base: "bare",
      lua: script(luaPost("/", H2C)),
      against: "POST small JSON",
    },
    { request: "service GET /live", path: "/live", modes: ["app-front"], base: "app-bare" },
    {
      request: "service POST /api/v1/feature-flags/evaluate",
      path: "/api/v1/feature-flags/evaluate",
      modes: ["app-front"],
      base: "app-bare",
      lua: script(luaPost("/api/v1/feature-flags/evaluate")),
    },
  ];
  const names: Record<string, string> = {
    bare: "bare Deno.serve",
    front: "front (lib/http/h2c.ts: first request here, then Deno's own server)",
    "relay-front": "relay for every request (relayServe)",
    relay: "relay only (no framing)",
    node: "node:http (own handler)",
    "app-bare": "service on bare Deno.serve",
    "app-front": "service on the front",
  };
  try {
    for (const c of cases) {
      // The baseline of each request, measured right before its candidates.
      const own = await measure(c.base, (s) => s.url + c.path, c.lua);
      const baseline = c.against === undefined
        ? own
        : rows.find((r) => r.request === c.against && r.result === r.baseline)!.result;
      rows.push({ server: names[c.base], request: c.request, result: own, baseline });
      for (const mode of c.modes) {
        const result = await measure(mode, (s) => s.url + c.path, c.lua);
        rows.push({ server: names[mode], request: c.request, result, baseline });
      }
    }
  } finally {
    for (const f of scripts) Deno.removeSync(f);
  }
  const ok = (r: WrkResult) => r.requests - r.errors;
  console.log(
    `wrk on CPU ${WRK_CPU ?? "any"}, servers on CPU ${SERVER_CPU ?? "any"}, 50 connections, ` +
      `${seconds} s; Deno ${Deno.version.deno}. "ok/s" counts 2xx answers only (bare ` +
      "Deno.serve answers the h2c POST with 400); rows with h2c headers are compared with " +
      "bare Deno.serve on the same request without them.\n",
  );
  console.log("| request | server | req/s | ok/s | p99 ms | ratio (ok/s) to the row's baseline |");
  console.log("|---|---|---:|---:|---:|---:|");
  for (const r of rows) {
    const okRate = ok(r.result) / r.result.seconds;
    const baseOk = ok(r.baseline) / r.baseline.seconds;
    const ratio = r.result === r.baseline ? "1.00 (baseline)" : (okRate / baseOk).toFixed(2);
    console.log(
      `| ${r.request} | ${r.server} | ${Math.round(r.result.rps)} | ${Math.round(okRate)} | ` +
        `${r.result.p99_ms.toFixed(2)} | ${ratio} |`,
    );
  }
}
