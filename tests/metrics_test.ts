/**
 * `/metrics` parses as Prometheus text format and moves when requests are made; with API
 * tokens it needs the admin scope.
 */
import assert from "node:assert/strict";
import { embeddedSettings, startService, tempFile, waitFor } from "./_helpers.ts";

type App = Awaited<ReturnType<typeof startService>>["app"];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict parser for the text format: every line a comment or `name{labels} value`. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(
      line,
    );
    if (t) {
      assert.ok(!typed.has(t[1]), `TYPE ${t[1]} twice`);
      typed.add(t[1]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([-+]?(?:[0-9.e+-]+|Inf|NaN))$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let l;
      let consumed = 0;
      while ((l = re.exec(m[3])) !== null) {
        labels[l[1]] = l[2];
        consumed = re.lastIndex;
      }
      assert.equal(consumed, m[3].length, `bad labels: ${m[3]}`);
    }
    const family = m[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(m[1]) || typed.has(family), `sample before its TYPE: ${m[1]}`);
    samples.push({ name: m[1], labels, value: Number(m[4].replace("Inf", "Infinity")) });
  }
  return samples;
}

async function scrape(app: App, token?: string): Promise<Sample[]> {
  const res = await app.request("/metrics", {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

function value(s: Sample[], name: string, labels: Record<string, string> = {}): number {
  return s.filter((x) =>
    x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)
  ).reduce((a, x) => a + x.value, 0);
}

Deno.test("metrics: scrapes cleanly and moves with requests", async () => {
  const flags = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(
    flags,
    JSON.stringify({ version: 2, features: [{ name: "f", enabled: true, strategies: [] }] }),
  );
  await using svc = await startService(embeddedSettings({ FLAGS_FILE: flags }));
  const before = await scrape(svc.app);
  const live = { method: "GET", route: "/live", status: "200" };
  const n0 = value(before, "http_request_duration_seconds_count", live);
  for (let i = 0; i < 5; i++) await (await svc.app.request("/live")).body?.cancel();
  await (await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: "k", value: 1, environment: "development" }),
  })).body?.cancel();
  for (let i = 0; i < 3; i++) {
    await (await svc.app.request("/api/v1/config/k?environment=development")).body?.cancel();
  }
  await waitFor(async () => {
    const r = await svc.app.request("/api/v1/feature-flags/evaluate/boolean", {
      method: "POST",
      body: JSON.stringify({ flag_name: "f" }),
    });
    return (await r.json()).reason === "STATIC";
  });
  const after = await scrape(svc.app);
  assert.equal(value(after, "http_request_duration_seconds_count", live), n0 + 5);
  assert.ok(
    value(after, "http_request_duration_seconds_bucket", { ...live, le: "+Inf" }) >= n0 + 5,
  );
  assert.equal(
    value(after, "http_request_duration_seconds_count", { route: "/api/v1/config", status: "201" }),
    1,
  );
  assert.ok(value(after, "actor_call_duration_seconds_count", { actor: "config" }) > 0);
  assert.ok(value(after, "flag_evaluations_total", { reason: "STATIC" }) >= 1);
  assert.equal(value(after, "backend_up", { backend: "storage", kind: "sqlite" }), 1);
  assert.equal(value(after, "actor_up", { actor: "flags" }), 1);
  assert.ok(
    value(after, "config_cache_lookups_total") + value(after, "config_near_cache_lookups_total") >=
      3,
  );
  // No Kafka on the embedded default: the one change waits in the outbox.
  assert.equal(value(after, "config_outbox_backlog"), 1);
  assert.equal(value(after, "flag_definitions", { environment: "development" }), 1);
});

Deno.test("metrics: with API tokens /metrics needs the admin scope", async () => {
  const admin = "metrics-admin-token-0123";
  const reader = "metrics-reader-token-012";
  await using svc = await startService(embeddedSettings({
    API_TOKENS: `ops:${admin}:admin;r:${reader}:config:read`,
  }));
  for (const [token, status] of [[undefined, 401], [reader, 403]] as const) {
    const res = await svc.app.request("/metrics", {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    assert.equal(res.status, status);
    await res.body?.cancel();
  }
  assert.ok((await scrape(svc.app, admin)).length > 0);
});

Deno.test("metrics: a request is counted under the route that answered it (watch, not :key)", async () => {
  await using svc = await startService(embeddedSettings());
  // The request histogram is the process's: count what these requests add to it.
  const counts = async () =>
    new Map(
      parse(await (await svc.app.request("/metrics")).text())
        .filter((s) => s.name === "http_request_duration_seconds_count")
        .map((s) => [`${s.labels.method} ${s.labels.route} ${s.labels.status}`, s.value]),
    );
  const before = await counts();
  const watch = await svc.app.request("/api/v1/config/watch?environment=development", {
    method: "HEAD",
  });
  assert.equal(watch.status, 200);
  const get = await svc.app.request("/api/v1/config/k?environment=development");
  assert.equal(get.status, 404);
  await get.body?.cancel();
  const after = await counts();
  const added = [...after].filter(([k, v]) => v > (before.get(k) ?? 0) && !k.includes("/metrics"))
    .map(([k]) => k).sort();
  assert.deepEqual(added, ["GET /api/v1/config/:key 404", "HEAD /api/v1/config/watch 200"]);
});
