/**
 * Feature-flag endpoints (seed 18–23) and OFREP on the embedded default: a flags file in
 * Unleash client-API format. Shapes, reasons, typed values, errors as 4xx problems or as
 * `ERROR` answers, file reloads, and a real OFREP client.
 */
import assert from "node:assert/strict";
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";
import {
  embeddedSettings,
  get,
  ioTest,
  post,
  startService,
  tempFile,
  waitFor,
} from "./_helpers.ts";

const FEATURES = [
  { name: "dark-mode", enabled: true, strategies: [{ name: "default" }] },
  { name: "off-flag", enabled: false, strategies: [{ name: "default" }] },
  {
    name: "new-ui-enabled",
    enabled: true,
    strategies: [{
      name: "flexibleRollout",
      parameters: { rollout: "100", stickiness: "default", groupId: "new-ui-enabled" },
      constraints: [{ contextName: "region", operator: "IN", values: ["us-west"] }],
      variants: [{
        name: "enabled",
        weight: 1000,
        stickiness: "default",
        payload: { type: "string", value: "blue" },
      }],
    }],
  },
  {
    name: "half",
    enabled: true,
    strategies: [{
      name: "flexibleRollout",
      parameters: { rollout: "50", stickiness: "userId", groupId: "half" },
    }],
  },
  {
    name: "limits",
    enabled: true,
    strategies: [{
      name: "default",
      variants: [{ name: "big", weight: 1000, payload: { type: "number", value: "42" } }],
    }],
  },
  {
    name: "theme",
    enabled: true,
    description: "Colours",
    type: "experiment",
    stale: false,
    strategies: [{
      name: "default",
      variants: [{
        name: "cfg",
        weight: 1000,
        payload: { type: "json", value: '{"color":"red"}' },
      }],
    }],
  },
  {
    name: "beta-users",
    enabled: true,
    strategies: [{ name: "userWithId", parameters: { userIds: "user-1,user-2" } }],
  },
];

function flagsFile(doc: unknown): string {
  const path = tempFile({ prefix: "cs-flags-", suffix: ".json" });
  Deno.writeTextFileSync(path, JSON.stringify(doc));
  return path;
}

async function service(doc: unknown = { version: 2, features: FEATURES, segments: [] }) {
  const path = flagsFile(doc);
  const svc = await startService(embeddedSettings({ FLAGS_FILE: path }));
  return Object.assign(svc, { path });
}

type App = Awaited<ReturnType<typeof service>>["app"];

/** Waits until the actor has read the file (the first poll runs at start). */
async function ready(app: App, flag = "dark-mode") {
  await waitFor(
    async () => {
      const r = await post(app, "/api/v1/feature-flags/evaluate/boolean", { flag_name: flag });
      return r.body.reason !== "ERROR";
    },
    5_000,
    "flag definitions",
  );
}

Deno.test("flags: seed shapes of evaluate, boolean and bulk", async () => {
  await using svc = await service();
  await ready(svc.app);
  const e = await post(svc.app, "/api/v1/feature-flags/evaluate", {
    flag_name: "new-ui-enabled",
    user_id: "user-123",
    context: { region: "us-west", environment: "development" },
    default_value: false,
    environment: "development",
  });
  assert.equal(e.status, 200);
  assert.deepEqual(e.body, {
    flag_name: "new-ui-enabled",
    value: true,
    reason: "TARGETING_MATCH",
    variant: "enabled",
    environment: "development",
  });
  assert.deepEqual(Object.keys(e.body), ["flag_name", "value", "reason", "variant", "environment"]);

  const b = await post(svc.app, "/api/v1/feature-flags/evaluate/boolean", {
    flag_name: "dark-mode",
    user_id: "user-456",
    default_value: false,
    environment: "production",
  });
  assert.deepEqual(b.body, {
    flag_name: "dark-mode",
    value: true,
    reason: "STATIC",
    environment: "production",
  });

  const bulk = await post(svc.app, "/api/v1/feature-flags/evaluate/bulk", {
    flags: [
      { flag_name: "new-ui-enabled", default_value: false },
      { flag_name: "dark-mode", default_value: false },
      { flag_name: "off-flag", default_value: false },
    ],
    user_id: "user-123",
    context: { region: "us-west" },
    environment: "development",
  });
  assert.deepEqual(bulk.body, {
    "new-ui-enabled": { value: true, reason: "TARGETING_MATCH" },
    "dark-mode": { value: true, reason: "STATIC" },
    "off-flag": { value: false, reason: "DISABLED" },
  });
});

Deno.test("flags: reasons, typed payloads and errors answered as ERROR with the default", async () => {
  await using svc = await service();
  await ready(svc.app);
  const ev = async (body: Record<string, unknown>) =>
    (await post(svc.app, "/api/v1/feature-flags/evaluate", body)).body;

  assert.deepEqual(await ev({ flag_name: "new-ui-enabled", context: { region: "eu" } }), {
    flag_name: "new-ui-enabled",
    value: false,
    reason: "DEFAULT",
    variant: "disabled",
    environment: "development",
  });
  const s = await ev({
    flag_name: "new-ui-enabled",
    default_value: "x",
    context: { region: "us-west" },
  });
  assert.equal(s.value, "blue");
  assert.equal(s.variant, "enabled");
  const n = await ev({ flag_name: "limits", type: "integer", default_value: 1 });
  assert.deepEqual([n.value, n.reason, n.variant], [42, "STATIC", "big"]);
  const o = await ev({ flag_name: "theme", default_value: {} });
  assert.deepEqual(o.value, { color: "red" });
  const off = await ev({ flag_name: "off-flag", default_value: "fallback" });
  assert.deepEqual([off.value, off.reason], ["fallback", "DISABLED"]);

  const mismatch = await ev({ flag_name: "theme", default_value: "s" });
  assert.deepEqual(mismatch, {
    flag_name: "theme",
    value: "s",
    reason: "ERROR",
    environment: "development",
    error_code: "TYPE_MISMATCH",
  });
  const missing = await ev({ flag_name: "nope", default_value: 3 });
  assert.deepEqual([missing.value, missing.reason, missing.error_code], [
    3,
    "ERROR",
    "FLAG_NOT_FOUND",
  ]);

  // Targeting by user id: userWithId and a 50% rollout sticky on userId.
  assert.equal(
    (await ev({ flag_name: "beta-users", user_id: "user-2" })).reason,
    "TARGETING_MATCH",
  );
  assert.equal((await ev({ flag_name: "beta-users", user_id: "user-3" })).value, false);
  let on = 0;
  for (let i = 0; i < 200; i++) {
    const r = await ev({ flag_name: "half", user_id: `u-${i}` });
    if (r.value) {
      on++;
      assert.equal(r.reason, "SPLIT");
    }
    // Sticky: the same user gets the same answer.
    assert.equal((await ev({ flag_name: "half", user_id: `u-${i}` })).value, r.value);
  }
  assert.ok(on > 60 && on < 140, `50% rollout gave ${on}/200`);
});

Deno.test("flags: bad input is a 400 problem naming the field", async () => {
  await using svc = await service();
  const cases: [string, unknown, string][] = [
    ["/api/v1/feature-flags/evaluate", { flag: "x" }, "flag_name"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "" }, "flag_name"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", environment: "prod" }, "environment"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", type: "date" }, "type"],
    [
      "/api/v1/feature-flags/evaluate",
      { flag_name: "x", type: "string", default_value: 1 },
      "default_value",
    ],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", type: "object" }, "default_value"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", default_value: null }, "default_value"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", context: { a: { b: 1 } } }, "context.a"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", context: [] }, "context"],
    ["/api/v1/feature-flags/evaluate", { flag_name: "x", user_id: true }, "user_id"],
    ["/api/v1/feature-flags/evaluate", "not json", "body"],
    ["/api/v1/feature-flags/evaluate", "", "body"],
    ["/api/v1/feature-flags/evaluate", [1, 2], "body"],
    [
      "/api/v1/feature-flags/evaluate/boolean",
      { flag_name: "x", default_value: "no" },
      "default_value",
    ],
    ["/api/v1/feature-flags/evaluate/bulk", { flags: [] }, "flags"],
    ["/api/v1/feature-flags/evaluate/bulk", {
      flags: [{ flag_name: "a", type: "number", default_value: "x" }],
    }, "flags.0.default_value"],
    ["/api/v1/feature-flags/evaluate/bulk", { flags: "a" }, "flags"],
  ];
  for (const [path, body, field] of cases) {
    const r = await post(svc.app, path, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)} → ${r.status}`);
    assert.match(r.headers.get("content-type") ?? "", /application\/problem\+json/);
    assert.ok(
      r.body.errors.some((e: { field: string }) => e.field === field),
      `${JSON.stringify(body)}: expected ${field} in ${JSON.stringify(r.body.errors)}`,
    );
  }
  for (const path of ["/api/v1/feature-flags", "/api/v1/feature-flags/x"]) {
    for (const q of ["", "?environment=nope"]) {
      const r = await get(svc.app, path + q);
      assert.equal(r.status, 400);
      assert.equal(r.body.errors[0].field, "environment");
    }
  }
  const sync = await post(svc.app, "/api/v1/feature-flags/sync?environment=qa", "");
  assert.equal(sync.status, 400);
  const big = await post(svc.app, "/api/v1/feature-flags/evaluate", {
    flag_name: "x",
    context: { a: "x".repeat(2_000_000) },
  });
  assert.equal(big.status, 413);
});

Deno.test("flags: list, get and sync", async () => {
  await using svc = await service();
  await ready(svc.app);
  const list = await get(svc.app, "/api/v1/feature-flags?environment=development");
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.slice(0, 2), [
    { name: "dark-mode", enabled: true },
    { name: "off-flag", enabled: false },
  ]);
  assert.deepEqual(list.body.find((f: { name: string }) => f.name === "theme"), {
    name: "theme",
    enabled: true,
    type: "experiment",
    description: "Colours",
    stale: false,
  });
  const one = await get(svc.app, "/api/v1/feature-flags/dark-mode?environment=staging");
  assert.deepEqual(one.body, {
    name: "dark-mode",
    enabled: true,
    variants: [],
    strategies: [{ name: "default", parameters: {} }],
  });
  const nf = await get(svc.app, "/api/v1/feature-flags/zzz?environment=development");
  assert.equal(nf.status, 404);
  assert.match(nf.body.detail, /zzz/);

  const s = await post(svc.app, "/api/v1/feature-flags/sync?environment=production", "");
  assert.equal(s.status, 200);
  assert.deepEqual(Object.keys(s.body), ["environment", "flags_synced", "timestamp"]);
  assert.equal(s.body.environment, "production");
  assert.equal(s.body.flags_synced, FEATURES.length);
  assert.ok(!Number.isNaN(Date.parse(s.body.timestamp)));
});

Deno.test("flags: the file is reloaded when it changes; environments of their own", async () => {
  await using svc = await service({
    environments: {
      development: { version: 2, features: [{ name: "f", enabled: true, strategies: [] }] },
      production: { version: 2, features: [{ name: "f", enabled: false, strategies: [] }] },
    },
  });
  await ready(svc.app, "f");
  const val = async (env: string) =>
    (await post(svc.app, "/api/v1/feature-flags/evaluate/boolean", {
      flag_name: "f",
      environment: env,
    }))
      .body;
  assert.equal((await val("development")).value, true);
  assert.equal((await val("production")).value, false);
  // Not listed: no flags there.
  assert.equal((await val("staging")).error_code, "FLAG_NOT_FOUND");

  Deno.writeTextFileSync(
    svc.path,
    JSON.stringify({ version: 2, features: [{ name: "f", enabled: false, strategies: [] }] }),
  );
  await waitFor(async () => (await val("development")).value === false, 5_000, "reload");
  // Each environment's definitions are published on their own: staging may follow a moment
  // later (CI once read it between the two).
  await waitFor(async () => (await val("staging")).reason === "DISABLED", 5_000, "staging too");

  // A broken file keeps the last good definitions.
  Deno.writeTextFileSync(svc.path, "{ not json");
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal((await val("development")).reason, "DISABLED");
  const sync = await post(svc.app, "/api/v1/feature-flags/sync?environment=development", "");
  assert.equal(sync.status, 503);
  assert.match(sync.body.detail, /not valid JSON/);
});

Deno.test("flags: definitions survive a restart (last-known-good in the store)", async () => {
  const path = flagsFile({ version: 2, features: FEATURES });
  const settings = embeddedSettings({ FLAGS_FILE: path });
  {
    await using svc = await startService(settings);
    await ready(svc.app);
  }
  // The file is gone: the stored definitions still answer.
  Deno.writeTextFileSync(path, "{}");
  await using svc = await startService(settings);
  const r = await post(svc.app, "/api/v1/feature-flags/evaluate/boolean", {
    flag_name: "dark-mode",
  });
  assert.equal(r.body.value, true);
});

Deno.test("flags: OFREP single, bulk with ETag, errors", async () => {
  await using svc = await service();
  await ready(svc.app);
  const one = await post(svc.app, "/ofrep/v1/evaluate/flags/theme", {
    context: { targetingKey: "u1" },
  });
  assert.equal(one.status, 200);
  assert.deepEqual(one.body, {
    key: "theme",
    value: { color: "red" },
    reason: "STATIC",
    variant: "cfg",
    metadata: {},
  });
  const bool = await post(svc.app, "/ofrep/v1/evaluate/flags/dark-mode", {});
  assert.deepEqual([bool.body.value, bool.body.variant], [true, "enabled"]);
  const nf = await post(svc.app, "/ofrep/v1/evaluate/flags/zz", { context: {} });
  assert.equal(nf.status, 404);
  assert.deepEqual([nf.body.key, nf.body.errorCode], ["zz", "FLAG_NOT_FOUND"]);
  const bad = await post(svc.app, "/ofrep/v1/evaluate/flags/x", "{oops");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.errorCode, "PARSE_ERROR");
  const badCtx = await post(svc.app, "/ofrep/v1/evaluate/flags/x", { context: [] });
  assert.equal(badCtx.body.errorCode, "INVALID_CONTEXT");
  const badEnv = await post(svc.app, "/ofrep/v1/evaluate/flags/x", {}, { "x-environment": "qa" });
  assert.equal(badEnv.status, 400);

  const all = await post(svc.app, "/ofrep/v1/evaluate/flags", { context: { region: "us-west" } });
  assert.equal(all.status, 200);
  assert.equal(all.body.flags.length, FEATURES.length);
  const etag = all.headers.get("etag");
  assert.ok(etag);
  const res = await svc.app.request("/ofrep/v1/evaluate/flags", {
    method: "POST",
    headers: { "content-type": "application/json", "if-none-match": etag },
    body: JSON.stringify({ context: { region: "us-west" } }),
  });
  assert.equal(res.status, 304);
  await res.body?.cancel();
});

Deno.test("flags: OFREP contexts nested deeper than 128 levels are INVALID_CONTEXT", async () => {
  await using svc = await service();
  await ready(svc.app);
  /** `{"context": {"a": {"a": … {}}}}`, the context nested `n` levels. */
  const body = (n: number) => `{"context": ${'{"a": '.repeat(n - 1)}{}${"}".repeat(n - 1)}}`;
  for (const path of ["/ofrep/v1/evaluate/flags/dark-mode", "/ofrep/v1/evaluate/flags"]) {
    for (const n of [129, 5_000]) {
      const deep = await post(svc.app, path, body(n));
      assert.equal(deep.status, 400, `${path} ${n}: ${JSON.stringify(deep.body)}`);
      assert.equal(deep.body.errorCode, "INVALID_CONTEXT");
      assert.equal(
        deep.body.errorDetails,
        "context nests arrays and objects deeper than 128 levels",
      );
    }
    const ok = await post(svc.app, path, body(128));
    assert.equal(ok.status, 200, `${path} 128: ${JSON.stringify(ok.body)}`);
  }
  const single = await post(svc.app, "/ofrep/v1/evaluate/flags/dark-mode", body(129));
  assert.equal(single.body.key, "dark-mode");
  // The evaluation endpoints refuse deep bodies too, as problems naming the body.
  const deepDefault = JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`);
  for (
    const [path, b] of [
      ["/api/v1/feature-flags/evaluate", { flag_name: "dark-mode", default_value: deepDefault }],
      ["/api/v1/feature-flags/evaluate/bulk", {
        flags: [{ flag_name: "dark-mode", default_value: deepDefault }],
      }],
    ] as const
  ) {
    const r = await post(svc.app, path, b);
    assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.errors.some((e: { field: string }) => e.field === "body"), path);
  }
});

Deno.test("flags: a real OpenFeature client through @openfeature/ofrep-provider", async () => {
  await using svc = await service();
  await ready(svc.app);
  await using server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    svc.app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  await OpenFeature.setProviderAndWait("ofrep-test", new OFREPProvider({ baseUrl: base }));
  const client = OpenFeature.getClient("ofrep-test");
  try {
    assert.equal(await client.getBooleanValue("dark-mode", false), true);
    assert.equal(await client.getBooleanValue("off-flag", true), false);
    const s = await client.getStringDetails("new-ui-enabled", "none", {
      targetingKey: "u",
      region: "us-west",
    });
    assert.deepEqual([s.value, s.reason, s.variant], ["blue", "TARGETING_MATCH", "enabled"]);
    assert.equal(await client.getNumberValue("limits", 0), 42);
    assert.deepEqual(await client.getObjectValue("theme", {}), { color: "red" });
    const nf = await client.getBooleanDetails("no-such-flag", true);
    assert.deepEqual([nf.value, nf.errorCode], [true, "FLAG_NOT_FOUND"]);
    const tm = await client.getNumberDetails("theme", 7);
    assert.deepEqual([tm.value, tm.errorCode], [7, "TYPE_MISMATCH"]);
  } finally {
    await OpenFeature.clearProviders();
  }
});

ioTest(
  "flags: a token bound to an environment evaluates there when the request names none",
  async () => {
    const doc = (enabled: boolean) => ({
      version: 2,
      features: [{ name: "where", enabled, strategies: [{ name: "default", parameters: {} }] }],
      segments: [],
    });
    const path = flagsFile({ environments: { development: doc(false), production: doc(true) } });
    await using svc = await startService(embeddedSettings({
      FLAGS_FILE: path,
      API_TOKENS: "prod:prod-flags-token-0123:flags:read@production;" +
        "any:any-flags-token-01234:flags:read",
    }));
    const prod = { authorization: "Bearer prod-flags-token-0123" };
    const any = { authorization: "Bearer any-flags-token-01234" };
    const one = { flag_name: "where", default_value: false };
    const bulk = { flags: [one] };
    const ask = async (path: string, body: unknown, headers: Record<string, string>) =>
      (await post(svc.app, path, body, headers)).body;
    // Bound: its own environment, on every native route and on OFREP without X-Environment.
    assert.equal((await ask("/api/v1/feature-flags/evaluate", one, prod)).value, true);
    assert.equal(
      (await ask("/api/v1/feature-flags/evaluate", one, prod)).environment,
      "production",
    );
    assert.equal((await ask("/api/v1/feature-flags/evaluate/boolean", one, prod)).value, true);
    assert.equal((await ask("/api/v1/feature-flags/evaluate/bulk", bulk, prod)).where.value, true);
    assert.equal((await ask("/ofrep/v1/evaluate/flags/where", {}, prod)).value, true);
    // Naming another environment is refused; unbound tokens still get the default.
    const other = await post(svc.app, "/api/v1/feature-flags/evaluate", {
      ...one,
      environment: "development",
    }, prod);
    assert.equal(other.status, 403);
    assert.equal((await ask("/api/v1/feature-flags/evaluate", one, any)).value, false);
    assert.equal((await ask("/ofrep/v1/evaluate/flags/where", {}, any)).value, false);
  },
);
