/**
 * Unleash's Client API (`/api/client/features`, `register`, `metrics`): Unleash's own Node
 * SDK, unchanged, pointed at the service (`url: <service>/api/`) — with a flags file, and on
 * the local stack against the same SDK pointed at Unleash itself — plus in-process checks of
 * ETag/304, environment binding of tokens, raw tokens and bad bodies.
 */
import assert from "node:assert/strict";
import { Unleash, UnleashEvents } from "unleash-client";
import {
  call,
  embeddedSettings,
  ioTest,
  post,
  serverTest,
  sleep,
  stackSettings,
  startService,
  tempFile,
  until,
  waitFor,
} from "./_helpers.ts";
import { tempDatabase } from "./_pg.ts";
import { clientTokens, rollout, UNLEASH_VARS, UnleashAdmin } from "./_unleash.ts";
import type { Settings } from "../lib/settings.ts";
import { Authenticator, loadTokens, parseInlineTokens, parseTokenFile } from "../lib/auth.ts";

const DEV = "development";
const DEV_TOKEN = "dev-sdk-token-0123456789abcdef";
const PROD_TOKEN = "prod-sdk-token-0123456789abcdef";
const OPEN_TOKEN = "any-env-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
/** Two bound SDK tokens (sent raw, as SDKs do) and one bound to no environment. */
const TOKENS = `dev:${DEV_TOKEN}:flags:read@development;prod:${PROD_TOKEN}:flags:read@production;` +
  `any:${OPEN_TOKEN}:flags:read;admin:${ADMIN_TOKEN}:admin`;

/** The flags file: what each environment's SDK must answer is known from it. */
const FLAGS = {
  environments: {
    development: {
      version: 2,
      segments: [{
        id: 1,
        name: "older",
        constraints: [{ contextName: "age", operator: "NUM_GT", value: "30", values: [] }],
      }],
      features: [
        { name: "dev-only", enabled: true, strategies: [{ name: "default", parameters: {} }] },
        {
          name: "region",
          enabled: true,
          strategies: [{
            ...rollout(100),
            constraints: [{ contextName: "region", operator: "IN", values: ["us-west", "eu"] }],
          }],
        },
        { name: "older", enabled: true, strategies: [{ ...rollout(100), segments: [1] }] },
        { name: "off", enabled: false, strategies: [rollout(100)] },
        { name: "rollout", enabled: true, strategies: [rollout(40)] },
        {
          name: "colour",
          enabled: true,
          strategies: [rollout(100, "userId")],
          variants: [
            {
              name: "red",
              weight: 500,
              stickiness: "userId",
              payload: { type: "string", value: "r" },
            },
            {
              name: "blue",
              weight: 500,
              stickiness: "userId",
              payload: { type: "string", value: "b" },
            },
          ],
        },
      ],
    },
    production: {
      version: 2,
      features: [
        { name: "prod-only", enabled: true, strategies: [{ name: "default", parameters: {} }] },
      ],
    },
  },
};

/** A service on a flags file, served over TCP on loopback; dispose to stop both. */
async function served(settings: Settings) {
  const svc = await startService(settings);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, svc.app.fetch);
  return {
    svc,
    url: `http://127.0.0.1:${server.addr.port}/api/`,
    async [Symbol.asyncDispose]() {
      // The SDKs (declared after, so destroyed first) may have a request that has not yet
      // connected: the SDK's repository drops its listeners at destroy, so a refused
      // connection would become an uncaught 'error' inside unleash-client. Let it land first.
      await sleep(300);
      await server.shutdown();
      await svc[Symbol.asyncDispose]();
    },
  };
}

function fileSettings(over: Record<string, string> = {}): Settings {
  const file = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(file, JSON.stringify(FLAGS));
  return embeddedSettings({ FLAGS_FILE: file, ...over });
}

/** An SDK pointed at `url`, ready (its first fetch done); dispose to destroy it. */
async function sdk(
  url: string,
  opts: { headers?: Record<string, string>; refreshMs?: number; environment?: string } = {},
) {
  const client = new Unleash({
    url,
    appName: "config-service-sdk-test",
    environment: opts.environment ?? DEV,
    customHeaders: opts.headers ?? {},
    refreshInterval: opts.refreshMs ?? 500,
    metricsInterval: 500,
    disableMetrics: false,
  });
  const warnings: string[] = [];
  client.on(UnleashEvents.Warn, (w) => warnings.push(String(w)));
  client.on(UnleashEvents.Error, (e) => warnings.push(String(e)));
  const registered = new Promise((r) => client.once(UnleashEvents.Registered, r));
  const sent = new Promise((r) => client.once(UnleashEvents.Sent, r));
  await new Promise((resolve, reject) => {
    client.once(UnleashEvents.Synchronized, resolve);
    setTimeout(() => reject(new Error(`SDK not synchronized: ${warnings.join("; ")}`)), 15_000);
  });
  return {
    client,
    warnings,
    registered,
    sent,
    [Symbol.dispose]() {
      client.destroy();
    },
  };
}

/** `count` contexts over user ids, regions and ages. */
function contexts(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    userId: `user-${i}`,
    environment: DEV,
    properties: { region: ["us-west", "eu", "ap-south"][i % 3], age: String(18 + (i % 30)) },
  }));
}

ioTest(
  "Client API: the Node SDK pointed at the service answers the flags file's definitions, and its register and metrics calls are accepted",
  async () => {
    const settings = fileSettings({ UNLEASH_DISABLE_METRICS: "false" });
    await using s = await served(settings);
    using dev = await sdk(s.url, { refreshMs: 1_000 });
    let rolledOut = 0;
    for (const ctx of contexts(200)) {
      const { region, age } = ctx.properties;
      const c = dev.client;
      assert.equal(c.isEnabled("dev-only", ctx), true);
      assert.equal(c.isEnabled("prod-only", ctx), false);
      assert.equal(c.isEnabled("off", ctx), false);
      assert.equal(c.isEnabled("region", ctx), region === "us-west" || region === "eu");
      assert.equal(c.isEnabled("older", ctx), Number(age) > 30, `older for age ${age}`);
      // Rollout and variants: what the service's own evaluation (spec-tested) answers.
      const r = await post(s.svc.app, "/api/v1/feature-flags/evaluate", {
        flag_name: "rollout",
        user_id: ctx.userId,
        environment: DEV,
      });
      assert.equal(c.isEnabled("rollout", ctx), r.body.value, `rollout for ${ctx.userId}`);
      if (r.body.value) rolledOut++;
      const v = await post(s.svc.app, "/api/v1/feature-flags/evaluate", {
        flag_name: "colour",
        user_id: ctx.userId,
        default_value: "",
        environment: DEV,
      });
      const sv = c.getVariant("colour", ctx);
      assert.equal(sv.name, v.body.variant, `colour for ${ctx.userId}`);
      assert.equal(sv.payload?.value, v.body.value);
    }
    assert.ok(rolledOut > 40 && rolledOut < 120, `${rolledOut} of 200 in a 40% rollout`);
    await dev.registered;
    await dev.sent;
    assert.deepEqual(dev.warnings, []);
    // The SDK's counts are kept for /metrics (file mode has no Unleash to forward them to).
    const metrics = await until(
      async () => (await call(s.svc.app, "GET", "/metrics")).text,
      (m) =>
        /flag_sdk_answers_total\{environment="development",flag="dev-only",answer="yes"\} [1-9]/
          .test(m),
      { what: "SDK usage in /metrics" },
    );
    assert.match(metrics, /flag_sdk_instances\{environment="development"\} 1/);

    // A change of the file: the SDK has it within two of its refresh intervals.
    const doc = structuredClone(FLAGS);
    doc.environments.development.features[0].enabled = false;
    Deno.writeTextFileSync(settings.FLAGS_FILE!, JSON.stringify(doc));
    const t0 = Date.now();
    await waitFor(() => dev.client.isEnabled("dev-only") === false, 2_000 + 1_000, "the change");
    console.log(`file change reached the SDK in ${Date.now() - t0} ms`);
  },
);

ioTest(
  "Client API: a token bound to production gives the SDK production's flags and cannot read development's",
  async () => {
    await using s = await served(fileSettings({ API_TOKENS: TOKENS }));
    // Raw, as SDKs send it; and as Bearer.
    using prod = await sdk(s.url, { headers: { Authorization: PROD_TOKEN } });
    assert.equal(prod.client.isEnabled("prod-only"), true);
    assert.equal(prod.client.isEnabled("dev-only"), false);
    await prod.registered;
    await prod.sent;
    assert.deepEqual(prod.warnings, []);
    using dev = await sdk(s.url, { headers: { Authorization: `Bearer ${DEV_TOKEN}` } });
    assert.equal(dev.client.isEnabled("dev-only"), true);
    assert.equal(dev.client.isEnabled("prod-only"), false);

    const app = s.svc.app;
    const asProd = { authorization: PROD_TOKEN };
    const prodDoc = await call(app, "GET", "/api/client/features", undefined, asProd);
    assert.equal(prodDoc.status, 200);
    assert.deepEqual(prodDoc.body.features.map((f: { name: string }) => f.name), ["prod-only"]);
    for (
      const [path, headers] of [
        ["/api/client/features", { "x-environment": DEV }],
        ["/api/client/features", { "x-environment": `production, ${DEV}` }],
        ["/api/client/features?environment=development", {}],
        ["/api/client/features?environment=production&environment=development", {}],
        ["/api/client/features?%65nvironment=%64evelopment", {}],
        ["/api/v1/feature-flags?environment=development", {}],
        ["/api/v1/feature-flags/dev-only?environment=development", {}],
      ] as [string, Record<string, string>][]
    ) {
      const r = await call(app, "GET", path, undefined, { ...asProd, ...headers });
      assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}: ${r.text}`);
      assert.match(r.body.detail, /bound to the environment production/);
      assert.equal(r.body.features, undefined);
      assert.equal(r.body.enabled, undefined);
    }
    for (const path of ["/api/client/metrics", "/api/client/register"]) {
      const r = await call(
        app,
        "POST",
        path,
        { appName: "a", bucket: { start: "s", stop: "t", toggles: {} } },
        { ...asProd, "x-environment": DEV },
      );
      assert.equal(r.status, 403, path);
    }
    // An environment in a JSON body is refused the same way (spelled any way JSON allows).
    for (
      const body of [
        JSON.stringify({ flag_name: "dev-only", environment: DEV }),
        `{"flag_name":"dev-only","\\u0065nvironment":"development"}`,
      ]
    ) {
      const r = await call(app, "POST", "/api/v1/feature-flags/evaluate", body, asProd);
      assert.equal(r.status, 403, `${body}: ${r.text}`);
      assert.match(r.body.detail, /bound to the environment production/);
    }
    const own = await call(app, "POST", "/api/v1/feature-flags/evaluate", {
      flag_name: "prod-only",
      environment: "production",
    }, asProd);
    assert.equal(own.body.value, true);
    // What SDKs write as `environment` in a usage body is ignored: no refusal, and the counts
    // are production's.
    const usage = await call(app, "POST", "/api/client/metrics", {
      appName: "java-like",
      environment: "default",
      bucket: { start: "s", stop: "t", toggles: { "prod-only": { yes: 5, no: 0 } } },
    }, asProd);
    assert.equal(usage.status, 202, usage.text);
    const metrics =
      (await call(app, "GET", "/metrics", undefined, { authorization: ADMIN_TOKEN })).text;
    assert.match(
      metrics,
      /flag_sdk_answers_total\{environment="production",flag="prod-only",answer="yes"\} [5-9]/,
    );
    const ofrep = await call(app, "POST", "/ofrep/v1/evaluate/flags", { context: {} }, {
      ...asProd,
      "x-environment": DEV,
    });
    assert.equal(ofrep.status, 403);
    // A token bound to none chooses with X-Environment; a token that is not valid is a 401.
    const any = await call(app, "GET", "/api/client/features", undefined, {
      authorization: OPEN_TOKEN,
      "x-environment": "production",
    });
    assert.deepEqual(any.body.features.map((f: { name: string }) => f.name), ["prod-only"]);
    const wrong = await call(app, "GET", "/api/client/features", undefined, {
      authorization: "not-a-token-0123456789",
    });
    assert.equal(wrong.status, 401);
  },
);

ioTest(
  "Client API: GET /api/client/features answers 304 to its ETag, and a new ETag once the definitions change",
  async () => {
    const settings = fileSettings();
    await using svc = await startService(settings);
    const app = svc.app;
    const first = await call(app, "GET", "/api/client/features");
    assert.equal(first.status, 200);
    assert.equal(first.body.version, 2);
    assert.ok(first.body.features.some((f: { name: string }) => f.name === "dev-only"));
    assert.equal(first.body.segments[0].id, 1);
    const etag = first.headers.get("etag")!;
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`]) {
      const again = await call(app, "GET", "/api/client/features", undefined, {
        "if-none-match": inm,
      });
      assert.equal(again.status, 304, inm);
      assert.equal(again.headers.get("etag"), etag);
      assert.equal(again.text, "");
    }
    // Open: X-Environment (or ?environment=) chooses; the default is development.
    const prod = await call(app, "GET", "/api/client/features?environment=production");
    assert.notEqual(prod.headers.get("etag"), etag);
    const prodByHeader = await call(app, "GET", "/api/client/features", undefined, {
      "x-environment": "production",
    });
    assert.equal(prodByHeader.headers.get("etag"), prod.headers.get("etag"));

    const doc = structuredClone(FLAGS);
    doc.environments.development.features[0].enabled = false;
    Deno.writeTextFileSync(settings.FLAGS_FILE!, JSON.stringify(doc));
    const changed = await until(
      () => call(app, "GET", "/api/client/features", undefined, { "if-none-match": etag }),
      (r) => r.status === 200,
      { what: "a new ETag" },
    );
    assert.notEqual(changed.headers.get("etag"), etag);
    assert.equal(changed.body.features[0].enabled, false);
  },
);

ioTest("Client API: bad register and metrics bodies are a 400 naming the field", async () => {
  await using svc = await startService(fileSettings());
  const app = svc.app;
  const good = { appName: "a", instanceId: "i", bucket: { start: "s", stop: "t", toggles: {} } };
  const cases: [string, unknown, string][] = [
    ["/api/client/register", {}, "appName"],
    ["/api/client/register", { appName: "a", strategies: "default" }, "strategies"],
    ["/api/client/register", { appName: "a", interval: "x" }, "interval"],
    ["/api/client/metrics", { appName: "a" }, "bucket"],
    ["/api/client/metrics", { ...good, bucket: { start: "s", stop: "t" } }, "bucket.toggles"],
    [
      "/api/client/metrics",
      { ...good, bucket: { start: "s", stop: "t", toggles: { f: { yes: -1, no: 0 } } } },
      "bucket.toggles.f.yes",
    ],
    [
      "/api/client/metrics",
      {
        ...good,
        bucket: { start: "s", stop: "t", toggles: { f: { yes: 1, no: 0, variants: { v: "x" } } } },
      },
      "bucket.toggles.f.variants.v",
    ],
  ];
  for (const [path, body, field] of cases) {
    const r = await call(app, "POST", path, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`);
    assert.match(r.headers.get("content-type")!, /problem\+json/);
    assert.ok(
      r.body.errors.some((e: { field: string }) => e.field === field),
      `${path}: ${field} in ${JSON.stringify(r.body.errors)}`,
    );
  }
  const malformed = await call(app, "POST", "/api/client/metrics", "{not json");
  assert.equal(malformed.status, 400);
  assert.match(malformed.body.detail, /JSON/);
  // What real SDKs add is accepted.
  const ok = await call(app, "POST", "/api/client/metrics", {
    ...good,
    platformName: "node",
    yggdrasilVersion: null,
    impactMetrics: [],
    bucket: { ...good.bucket, toggles: { f: { yes: 1, no: 2, variants: { v: 1 }, extra: 1 } } },
  });
  assert.equal(ok.status, 202, ok.text);
  const unknownEnv = await call(app, "GET", "/api/client/features", undefined, {
    "x-environment": "nope",
  });
  assert.equal(unknownEnv.status, 400);
  assert.equal(unknownEnv.body.errors[0].field, "X-Environment");
});

const VARS = [...UNLEASH_VARS, "DATABASE_URL"];

serverTest(
  "unleash",
  VARS,
  "Client API: the Node SDK through the service answers as when pointed at Unleash, and sees a change within two refresh intervals",
  async () => {
    const admin = new UnleashAdmin();
    const db = await tempDatabase();
    const REFRESH_MS = 2_000;
    try {
      const flexible = await admin.flag("rollout", {
        [DEV]: [{
          name: "flexibleRollout",
          parameters: { rollout: "40", stickiness: "default", groupId: "r" },
        }],
      });
      const constrained = await admin.flag("constrained", {
        [DEV]: [{
          name: "flexibleRollout",
          parameters: { rollout: "100", stickiness: "default", groupId: "c" },
          constraints: [
            { contextName: "region", operator: "IN", values: ["us-west", "eu"] },
            { contextName: "age", operator: "NUM_GT", value: "30" },
          ],
        }],
      });
      const variants = await admin.flag("variants", {
        [DEV]: [{
          name: "flexibleRollout",
          parameters: { rollout: "100", stickiness: "userId", groupId: "v" },
          variants: [
            {
              name: "red",
              weight: 500,
              weightType: "variable",
              stickiness: "userId",
              payload: { type: "string", value: "r" },
            },
            {
              name: "blue",
              weight: 500,
              weightType: "variable",
              stickiness: "userId",
              payload: { type: "string", value: "b" },
            },
          ],
        }],
      });
      // Asked of the SDK through the service only: its counts in Unleash came through us.
      const counted = await admin.flag("counted", { [DEV]: [{ name: "default" }] });
      await using s = await served(stackSettings({
        DATABASE_URL: db.url,
        UNLEASH_REFRESH_INTERVAL: "1",
        UNLEASH_DISABLE_METRICS: "false",
        UNLEASH_METRICS_INTERVAL: "1",
        ZOOKEEPER_HOSTS: "",
        KAFKA_BOOTSTRAP_SERVERS: "",
        API_TOKENS: TOKENS,
      }));
      const unleashUrl = Deno.env.get("UNLEASH_URL")!;
      using direct = await sdk(unleashUrl, {
        headers: { Authorization: clientTokens()[DEV] },
        refreshMs: REFRESH_MS,
      });
      using via = await sdk(s.url, {
        headers: { Authorization: DEV_TOKEN },
        refreshMs: REFRESH_MS,
      });
      const flags = [flexible, constrained, variants];
      await waitFor(
        () =>
          flags.every((f) =>
            via.client.getFeatureToggleDefinition(f) && direct.client.getFeatureToggleDefinition(f)
          ),
        15_000,
        "both SDKs see the test's flags",
      );
      for (const ctx of contexts(200)) {
        for (const f of flags) {
          assert.equal(
            via.client.isEnabled(f, ctx),
            direct.client.isEnabled(f, ctx),
            `${f} ${ctx.userId}`,
          );
          assert.deepEqual(
            via.client.getVariant(f, ctx),
            direct.client.getVariant(f, ctx),
            `${f} ${ctx.userId}`,
          );
        }
      }
      await via.registered;
      await waitFor(() => via.client.getFeatureToggleDefinition(counted), 15_000, "counted");
      for (let i = 0; i < 7; i++) {
        assert.equal(via.client.isEnabled(counted, { userId: `u${i}` }), true);
      }
      await via.sent;
      assert.deepEqual(via.warnings, []);
      // The SDK's counts join the usage the service reports to Unleash.
      await waitFor(
        async () => ((await admin.usage(counted))[DEV]?.yes ?? 0) >= 7,
        30_000,
        "the SDK's counts in Unleash",
      );

      // A change in Unleash: once Unleash's own client API shows it, the SDK has it through
      // the service within two of its refresh intervals.
      await admin.toggle(constrained, DEV, false);
      await waitFor(
        async () => {
          const res = await fetch(`${unleashUrl.replace(/\/+$/, "")}/client/features`, {
            headers: { Authorization: clientTokens()[DEV] },
          });
          const doc = await res.json() as { features: { name: string; enabled: boolean }[] };
          return doc.features.find((f) => f.name === constrained)?.enabled === false;
        },
        15_000,
        "Unleash shows the change",
      );
      const t0 = Date.now();
      await waitFor(
        () => via.client.getFeatureToggleDefinition(constrained)?.enabled === false,
        2 * REFRESH_MS + 500,
        "the change through the service",
      );
      console.log(`change reached the SDK through the service in ${Date.now() - t0} ms`);
    } finally {
      await admin.cleanup();
      await db.drop();
    }
  },
);

Deno.test("auth: tokens are bound to an environment by `@env` inline and `environment` in the file", () => {
  const [bound, free] = parseInlineTokens(
    `a:${DEV_TOKEN}:flags:read,config:read@production;b:${OPEN_TOKEN}:flags:read`,
  );
  assert.equal(bound.environment, "production");
  assert.deepEqual([...bound.scopes], ["flags:read", "config:read"]);
  assert.equal(free.environment, undefined);
  assert.throws(() => parseInlineTokens(`a:${DEV_TOKEN}:flags:read@`), /after `@`/);
  const [fromFile] = parseTokenFile(JSON.stringify([
    { name: "f", token_sha256: "ab".repeat(32), scopes: ["flags:read"], environment: "staging" },
  ]));
  assert.equal(fromFile.environment, "staging");
  assert.throws(
    () =>
      loadTokens({
        API_TOKENS: `a:${DEV_TOKEN}:flags:read@qa`,
        AUTH_REQUIRED: false,
        SUPPORTED_ENVIRONMENTS: ["development", "production"],
      }),
    /bound to qa, not one of SUPPORTED_ENVIRONMENTS/,
  );
});

Deno.test("auth: the token is accepted raw in Authorization, as Unleash SDKs send it, and as Bearer", () => {
  const auth = new Authenticator(parseInlineTokens(`p:${PROD_TOKEN}:flags:read@production`));
  for (const header of [PROD_TOKEN, `Bearer ${PROD_TOKEN}`, `bearer   ${PROD_TOKEN}`]) {
    const r = auth.check(header, ["flags:read"]);
    assert.ok(r.ok, header);
    assert.equal(r.environment, "production");
  }
  for (const header of ["Bearer", `Basic ${PROD_TOKEN}`, `${PROD_TOKEN}x`]) {
    assert.equal(auth.check(header, ["flags:read"]).ok, false, header);
  }
  assert.equal((auth.check(PROD_TOKEN, ["flags:write"]) as { status: number }).status, 403);
});
