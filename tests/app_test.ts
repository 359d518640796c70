import assert from "node:assert/strict";
import { ActorClient } from "../actors/actor_client.ts";
import { buildApp } from "../routes/app.ts";
import type { ActorHandle } from "../routes/actors.ts";
import { embeddedSettings, PROBLEM, startService, waitFor } from "./_helpers.ts";
import type { EchoCalls } from "./fixtures/echo_protocol.ts";

Deno.test("GET /health answers the seed's shape with a section per backend", async () => {
  await using svc = await startService(embeddedSettings());
  const body = await waitFor(
    async () => {
      const res = await svc.app.request("/health");
      const b = await res.json();
      const all = ["storage", "cache", "registry", "events", "flags"].every((n) => b.backends[n]);
      return res.status === 200 && b.backends.storage?.status === "up" && all ? b : null;
    },
    5_000,
    "backend reports",
  );
  assert.equal(body.status, "healthy");
  assert.equal(body.service, "config-service");
  assert.equal(body.version, "1.0.0");
  assert.equal(body.backends.storage.kind, "sqlite");
  assert.equal(body.backends.registry.kind, "embedded");
  assert.equal(body.backends.flags.kind, "file");
  assert.equal(body.backends.cache.status, "disabled");
  assert.deepEqual(Object.keys(body.actors).sort(), ["config", "flags", "health", "registry"]);
});

Deno.test("GET / and GET /api/v1/config/status answer exactly the seed's shapes", async () => {
  await using svc = await startService(embeddedSettings());
  const root = await svc.app.request("/");
  assert.equal(root.status, 200);
  assert.deepEqual(await root.json(), {
    service: "Configuration Management Service",
    version: "1.0.0",
    status: "running",
    description: "Centralized configuration for microservices",
  });
  const status = await svc.app.request("/api/v1/config/status");
  assert.deepEqual(await status.json(), {
    service: "config-service",
    version: "v1",
    status: "operational",
    features: [
      "Environment-specific configurations",
      "Service discovery",
      "Dynamic configuration updates",
      "Configuration audit logging",
      "Feature flags with Unleash",
    ],
  });
});

Deno.test("GET /ready and /live answer when every actor does", async () => {
  await using svc = await startService(embeddedSettings());
  const ready = await svc.app.request("/ready");
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), {
    status: "ready",
    actors: { config: "ok", registry: "ok", health: "ok", flags: "ok" },
  });
  assert.equal((await svc.app.request("/live")).status, 200);
  // Concurrent requests share round trips; each still answers with its own request id.
  const many = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) => svc.app.request("/ready", { headers: { "x-request-id": `ready-${i}` } }),
    ),
  );
  for (const [i, r] of many.entries()) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-request-id"), `ready-${i}`);
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.equal((await r.json()).status, "ready");
  }
  // A query string or another method takes the routed path and answers the same way.
  const q = await svc.app.request("/ready?verbose=1");
  assert.equal(q.status, 200);
  assert.equal((await q.json()).status, "ready");
  assert.equal((await svc.app.request("/ready", { method: "HEAD" })).status, 200);
});

Deno.test("an unknown route is a 404 problem and a known path with another method a 405", async () => {
  await using svc = await startService(embeddedSettings());
  const nf = await svc.app.request("/api/v1/nothing-here");
  assert.equal(nf.status, 404);
  assert.equal(nf.headers.get("content-type"), PROBLEM);
  const p = await nf.json();
  assert.equal(p.status, 404);
  assert.equal(p.instance, "/api/v1/nothing-here");
  const na = await svc.app.request("/health", { method: "DELETE" });
  assert.equal(na.status, 405);
  assert.equal(na.headers.get("content-type"), PROBLEM);
  assert.match(na.headers.get("allow") ?? "", /GET/);
});

Deno.test("a chunked body over 1 MiB is a 413 problem", async () => {
  await using svc = await startService(embeddedSettings());
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (sent++ < 20) ctl.enqueue(chunk);
      else ctl.close();
    },
  });
  const res = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    // @ts-ignore: Deno's fetch needs duplex for a streamed body
    duplex: "half",
  });
  assert.equal(res.status, 413);
  assert.equal(res.headers.get("content-type"), PROBLEM);
});

Deno.test("a body over 1 MiB is a 413 problem", async () => {
  await using svc = await startService(embeddedSettings());
  const res = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ value: "x".repeat(1024 * 1024 + 10) }),
  });
  assert.equal(res.status, 413);
  assert.equal(res.headers.get("content-type"), PROBLEM);
  assert.equal((await res.json()).status, 413);
});

Deno.test("X-Request-Id is echoed, or made when absent or malformed", async () => {
  await using svc = await startService(embeddedSettings());
  const given = await svc.app.request("/live", { headers: { "x-request-id": "abc-123" } });
  assert.equal(given.headers.get("x-request-id"), "abc-123");
  const made = await svc.app.request("/live", { headers: { "x-request-id": "bad id\n" } });
  const id = made.headers.get("x-request-id") ?? "";
  assert.match(id, /^[0-9a-f]{8}-[0-9a-z]+$/);
  const next = await svc.app.request("/live");
  assert.notEqual(next.headers.get("x-request-id"), id, "ids are unique");
});

Deno.test("GET /openapi.json documents the implemented routes; /docs and /redoc load assets locally", async () => {
  await using svc = await startService(embeddedSettings());
  const doc = await (await svc.app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.1.0");
  for (const p of ["/", "/health", "/ready", "/live", "/api/v1/config/status"]) {
    assert.ok(doc.paths[p], `${p} documented`);
  }
  for (const page of ["/docs", "/redoc"]) {
    const res = await svc.app.request(page);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, `${page} loads nothing from another host`);
    // `data:` URLs (the empty icon) are inline: nothing is fetched for them.
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])
      .filter((a) => !a.startsWith("data:"));
    assert.ok(assets.length > 0);
    for (const a of assets) {
      const r = await svc.app.request(a);
      assert.equal(r.status, 200, `${a} served`);
      assert.ok((await r.text()).length > 10_000, `${a} is the real asset`);
    }
  }
});

Deno.test("a request log line is written per request with route, status, ms and request id", async () => {
  const { capturedLog } = await import("./_helpers.ts");
  await using svc = await startService(embeddedSettings({ LOG_LEVEL: "INFO" }));
  const { log } = await import("../lib/log.ts");
  log.setLevel("info");
  try {
    await svc.app.request("/live", { headers: { "x-request-id": "log-check-1" } });
  } finally {
    log.setLevel("warn");
  }
  const line = capturedLog.map((l) => JSON.parse(l)).find((l) => l.request_id === "log-check-1");
  assert.ok(line, "log line found");
  assert.equal(line.msg, "request");
  assert.equal(line.route, "/live");
  assert.equal(line.status, 200);
  assert.equal(typeof line.ms, "number");
});

Deno.test("request log lines are the JSON the logger writes, field for field, whatever the path", async () => {
  const { capturedLog } = await import("./_helpers.ts");
  await using svc = await startService(embeddedSettings({ LOG_LEVEL: "INFO" }));
  const { log } = await import("../lib/log.ts");
  const paths = ["/live", "/live", '/nope/%22"\\ä\u2028?q=1', "/api/v1/config/a%2Fb"];
  log.setLevel("info");
  try {
    for (const [i, p] of paths.entries()) {
      await svc.app.request(p, { headers: { "x-request-id": `line-${i}` } });
    }
    await svc.app.request("/live", { method: "HEAD", headers: { "x-request-id": "line-head" } });
    await svc.app.request("/live", { method: "BREW", headers: { "x-request-id": "line-501" } });
  } finally {
    log.setLevel("warn");
  }
  const lines = capturedLog.filter((l) => l.includes('"request_id":"line-'));
  assert.equal(lines.length, paths.length + 2);
  for (const l of lines) {
    const o = JSON.parse(l);
    // The order and the escaping JSON.stringify gives the same fields: the logger's format.
    const again = JSON.stringify({
      ts: o.ts,
      level: "info",
      msg: "request",
      method: o.method,
      route: o.route,
      path: o.path,
      status: o.status,
      ms: o.ms,
      request_id: o.request_id,
    });
    assert.equal(l, again);
  }
  const nope = JSON.parse(lines[2]);
  assert.equal(nope.route, null);
  assert.equal(nope.path, "/nope/%22%22/%C3%A4%E2%80%A8"); // as the URL parser left it
  assert.equal(JSON.parse(lines[4]).method, "HEAD");
  assert.deepEqual([JSON.parse(lines[5]).method, JSON.parse(lines[5]).status], ["BREW", 501]);
});

Deno.test("an actor call that times out answers 504 problem JSON, and a crashed actor 503", async () => {
  const settings = embeddedSettings();
  await using slow = new ActorClient<EchoCalls>({
    name: "slow",
    url: new URL("./fixtures/echo_worker.ts", import.meta.url),
    settings,
    timeoutMs: 100,
  });
  await slow.start();
  const handle = (ping: () => Promise<unknown>): ActorHandle => ({
    name: "slow",
    get ready() {
      return slow.ready;
    },
    get restarts() {
      return slow.restarts;
    },
    get queueDepth() {
      return slow.queueDepth;
    },
    get backends() {
      return slow.backends;
    },
    ping,
  });
  const timeoutApp = buildApp({
    settings,
    actors: { slow: handle(() => slow.call({ type: "sleep", ms: 2_000 })) },
    startedAt: Date.now(),
  });
  const t0 = Date.now();
  const res = await timeoutApp.request("/ready");
  assert.equal(res.status, 504);
  assert.equal(res.headers.get("content-type"), PROBLEM);
  assert.ok(Date.now() - t0 < 1_500, "answered near the 100 ms timeout, not after the sleep");
  assert.match((await res.json()).detail, /slow did not answer within 100 ms/);

  const crashApp = buildApp({
    settings,
    actors: { slow: handle(() => slow.call({ type: "crash" }, 2_000)) },
    startedAt: Date.now(),
  });
  const crashed = await crashApp.request("/ready");
  assert.equal(crashed.status, 503);
  assert.equal(crashed.headers.get("content-type"), PROBLEM);
  // The supervisor restarts the worker: the next round trip succeeds.
  assert.equal(await slow.call({ type: "echo", value: 1 }, 2_000), 1);
  assert.equal(slow.restarts, 1);
});

Deno.test("a body that is not application/json is a 415 problem naming Content-Type", async () => {
  await using svc = await startService(embeddedSettings());
  const res = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify({ key: "k", value: 1, environment: "development" }),
  });
  assert.equal(res.status, 415);
  assert.equal(res.headers.get("content-type"), PROBLEM);
  const p = await res.json();
  assert.match(p.detail, /application\/json/);
  assert.deepEqual(p.errors, [{
    field: "Content-Type",
    in: "header",
    message: "must be application/json",
  }]);
});

Deno.test("a body that is not valid UTF-8 is a 400 naming body, and nothing is stored", async () => {
  await using svc = await startService(embeddedSettings());
  const bytes = new TextEncoder().encode(
    '{"key":"utf","environment":"development","value":"caf\u00e9"}',
  );
  const bad = bytes.slice();
  bad[bytes.indexOf(0xc3)] = 0xff;
  const res = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: bad,
  });
  assert.equal(res.status, 400);
  assert.deepEqual((await res.json()).errors, [{
    field: "body",
    in: "body",
    message: "is not valid UTF-8",
  }]);
  const get = await svc.app.request("/api/v1/config/utf?environment=development");
  assert.equal(get.status, 404);
  await get.body?.cancel();
});

Deno.test("the docs pages ask for no /favicon.ico, and the create example is not a secret", async () => {
  await using svc = await startService(embeddedSettings());
  for (const page of ["/docs", "/redoc"]) {
    assert.match(await (await svc.app.request(page)).text(), /<link rel="icon" href="data:,">/);
  }
  const doc = await (await svc.app.request("/openapi.json")).json();
  assert.equal(doc.components.schemas.ConfigCreate.properties.secret.example, false);
  assert.equal(doc.components.schemas.ConfigUpdate.properties.secret.example, false);
});
