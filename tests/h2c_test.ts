/**
 * h2c upgrade requests (issue 15, item 1): the JDK's default HttpClient asks every cleartext
 * request to upgrade to HTTP/2 (`Connection: Upgrade, HTTP2-Settings`, `Upgrade: h2c`); a
 * server that does not upgrade must answer it like any other request. Every route family is
 * asked the same things twice by curl on the real service (`main.ts`), once plainly and once
 * with `--http2` (the upgrade headers), and the two answers must have the same status and
 * body. Bare `Deno.serve` answered every such request with a body `400` and nothing else.
 */
import assert from "node:assert/strict";
import { ioTest, tempDir } from "./_helpers.ts";
import { spawnService } from "./_process.ts";

const curlMissing = await new Deno.Command("curl", { args: ["--version"], stdout: "null" })
  .output().then((o) => !o.success, () => true);
if (curlMissing) console.log("SKIPPED h2c suite: curl is not installed");

interface Step {
  method: string;
  /** `{k}` and `{s}` are replaced by the run's config key and service name. */
  path: string;
  body?: unknown;
  /** Send `content-length: 0` and no body, as the JDK does for `BodyPublishers.noBody()`. */
  emptyBody?: boolean;
}

const ENV = "environment=development&service_name=orders";
const STEPS: Step[] = [
  { method: "GET", path: "/" },
  { method: "GET", path: "/health" },
  { method: "GET", path: "/live" },
  { method: "GET", path: "/ready" },
  {
    method: "POST",
    path: "/api/v1/config",
    body: { key: "{k}", value: 10, environment: "development", service_name: "orders" },
  },
  { method: "GET", path: `/api/v1/config/{k}?${ENV}` },
  { method: "GET", path: `/api/v1/config?${ENV}` },
  {
    method: "PUT",
    path: "/api/v1/config/{k}",
    body: { value: 30, environment: "development", service_name: "orders" },
  },
  { method: "GET", path: `/api/v1/config/{k}/history?${ENV}` },
  {
    method: "POST",
    path: "/api/v1/config/bulk",
    body: { keys: ["{k}", "missing.key"], environment: "development", service_name: "orders" },
  },
  { method: "DELETE", path: `/api/v1/config/{k}?${ENV}` },
  { method: "GET", path: `/api/v1/config/{k}?${ENV}` },
  // A POST without a body, both ways a client sends one.
  { method: "POST", path: "/api/v1/config" },
  { method: "POST", path: "/api/v1/config", emptyBody: true },
  {
    method: "POST",
    path: "/api/v1/feature-flags/evaluate",
    body: { flag_name: "checkout", environment: "development", context: { user_id: "u1" } },
  },
  { method: "POST", path: "/api/v1/feature-flags/evaluate", emptyBody: true },
  { method: "POST", path: "/ofrep/v1/evaluate/flags", body: { context: { targetingKey: "u1" } } },
  {
    method: "POST",
    path: "/api/v1/registry/register",
    body: { service_name: "{s}", service_url: "http://10.0.0.7:8080" },
  },
  { method: "GET", path: "/api/v1/registry/services/{s}" },
  { method: "GET", path: "/api/client/features" },
  { method: "GET", path: "/api/frontend" },
  { method: "POST", path: "/api/frontend", body: { context: { userId: "u1" } } },
  { method: "GET", path: "/no/such/path" },
  { method: "POST", path: "/no/such/path", body: { a: 1 } },
];

interface Answer {
  status: number;
  body: string;
}

const STATUS_MARK = "\n--h2c-test-status:";

async function curl(url: string, step: Step, h2c: boolean): Promise<Answer> {
  const args = ["-s", "-X", step.method, "-w", `${STATUS_MARK}%{http_code}`];
  if (h2c) args.push("--http2");
  if (step.body !== undefined) {
    args.push("-H", "content-type: application/json", "--data-binary", JSON.stringify(step.body));
  } else if (step.emptyBody) {
    args.push("-H", "content-length: 0");
  }
  args.push(url);
  const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const at = text.lastIndexOf(STATUS_MARK);
  assert.ok(at >= 0, `curl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return { status: Number(text.slice(at + STATUS_MARK.length)), body: text.slice(0, at) };
}

/** Fields that differ from one request or one moment to the next. */
const VOLATILE =
  /(^|_)(request_id|timestamp|time|uptime.*|.*_at|latency.*|.*_ms|duration.*|checked|last_.*)$/i;

function normalise(body: string, names: Record<string, string>): unknown {
  let text = body;
  for (const [name, placeholder] of Object.entries(names)) {
    text = text.replaceAll(name, placeholder);
  }
  try {
    return strip(JSON.parse(text));
  } catch {
    return text;
  }
}

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.entries(v).filter(([k]) => !VOLATILE.test(k)).map(([k, x]) => [k, strip(x)]),
  );
}

ioTest("h2c: every route answers an h2c upgrade request as it answers the plain one", async () => {
  if (curlMissing) return;
  const svc = await spawnService({ DATA_DIR: tempDir(), LOG_LEVEL: "WARNING" });
  try {
    const run = async (h2c: boolean) => {
      const names = {
        k: `h2c.test.${h2c ? "upgrade" : "plain"}`,
        s: `svc-${h2c ? "up" : "plain"}`,
      };
      const answers: Answer[] = [];
      for (const step of STEPS) {
        const path = step.path.replaceAll("{k}", names.k).replaceAll("{s}", names.s);
        const body = step.body === undefined ? undefined : JSON.parse(
          JSON.stringify(step.body).replaceAll("{k}", names.k).replaceAll("{s}", names.s),
        );
        answers.push(await curl(svc.url + path, { ...step, path, body }, h2c));
      }
      return { answers, names: { [names.k]: "KEY", [names.s]: "SERVICE" } };
    };
    const plain = await run(false);
    const upgrade = await run(true);
    STEPS.forEach((step, i) => {
      const what = `${step.method} ${step.path}${step.emptyBody ? " (content-length: 0)" : ""}`;
      const a = plain.answers[i];
      const b = upgrade.answers[i];
      assert.equal(
        b.status,
        a.status,
        `${what}: status with --http2 (body ${JSON.stringify(b.body)})`,
      );
      assert.deepEqual(
        normalise(b.body, upgrade.names),
        normalise(a.body, plain.names),
        `${what}: body with --http2`,
      );
    });
    // The requests did reach the routes (a 400 from the server's parser has no body).
    assert.equal(plain.answers[4].status, 201, `create: ${plain.answers[4].body}`);
  } finally {
    svc.kill();
    await svc.status;
  }
});

/** Writes `text` on a new connection to `port` and reads until the peer closes (or 10 s). */
async function exchangeRaw(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(text));
  const out: Uint8Array<ArrayBuffer>[] = [];
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out.push(buf.slice(0, n));
    }
  } catch {
    /* closed by the timer */
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return new TextDecoder().decode(await new Blob(out).arrayBuffer());
}

const post = (key: string, opts: { h2c?: boolean; close?: boolean } = {}) => {
  const body = JSON.stringify({ key, value: 1, environment: "development" });
  return `POST /api/v1/config HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
    (opts.h2c
      ? "Connection: Upgrade, HTTP2-Settings" + (opts.close ? ", close" : "") +
        "\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n"
      : opts.close
      ? "Connection: close\r\n"
      : "") +
    `content-length: ${body.length}\r\n\r\n${body}`;
};

ioTest(
  "h2c: every request of a kept-alive connection, first or later, plain, upgrade or pipelined",
  async () => {
    const svc = await spawnService({ DATA_DIR: tempDir(), LOG_LEVEL: "WARNING" });
    try {
      const port = Number(new URL(svc.url).port);
      const statuses = (text: string) =>
        [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
      /** Sends each request on one connection after the answer to the one before. */
      const sequence = async (requests: string[]) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const got: string[] = [];
        try {
          for (const r of requests) {
            await conn.write(new TextEncoder().encode(r));
            const buf = new Uint8Array(16 * 1024);
            const n = await conn.read(buf);
            got.push(...statuses(new TextDecoder().decode(buf.subarray(0, n ?? 0))));
          }
        } finally {
          conn.close();
        }
        return got;
      };
      // The JDK's HttpClient asks for the upgrade on every request of a connection.
      assert.deepEqual(
        await sequence([1, 2, 3, 4].map((i) => post(`ka.up.${i}`, { h2c: i !== 3 }))),
        ["201", "201", "201", "201"],
      );
      // A plain first request: the rest of the connection is Deno's own server's.
      assert.deepEqual(
        await sequence([1, 2, 3].map((i) => post(`ka.plain.${i}`))),
        ["201", "201", "201"],
      );
      // Pipelined: three requests in one write, the last closing the connection.
      const piped = await exchangeRaw(
        port,
        post("ka.pipe.1") + post("ka.pipe.2", { h2c: true }) +
          post("ka.pipe.3", { h2c: true, close: true }),
      );
      assert.deepEqual(statuses(piped), ["201", "201", "201"], piped);
    } finally {
      svc.kill();
      await svc.status;
    }
  },
);
