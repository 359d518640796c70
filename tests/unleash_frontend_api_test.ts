/**
 * Unleash's Frontend API (`/api/frontend`, `client/metrics`, `client/register`): the browser
 * SDK `unleash-proxy-client`, unchanged, pointed at the service — with a flags file, and on
 * the local stack against the same SDK pointed at Unleash's own Frontend API — plus the
 * environment binding of tokens, any key on an open service, and CORS.
 */
import assert from "node:assert/strict";
import { EVENTS, InMemoryStorageProvider, UnleashClient } from "unleash-proxy-client";
import {
  call,
  embeddedSettings,
  ioTest,
  serverTest,
  stackSettings,
  startService,
  tempFile,
  until,
  waitFor,
} from "./_helpers.ts";
import { tempDatabase } from "./_pg.ts";
import { rollout, UNLEASH_VARS, UnleashAdmin } from "./_unleash.ts";
import type { Settings } from "../lib/settings.ts";
import { frontendContext } from "../lib/flags/frontend.ts";

const DEV = "development";
const PROD_TOKEN = "prod-web-token-0123456789abcdef";
const ANY_TOKEN = "any-web-token-0123456789abcdef";
const TOKENS = `prod:${PROD_TOKEN}:flags:read@production;any:${ANY_TOKEN}:flags:read`;
const ORIGIN = "https://app.example.com";

const DEV_FEATURES = [
  { name: "dev-only", enabled: true, strategies: [{ name: "default", parameters: {} }] },
  {
    name: "region",
    enabled: true,
    strategies: [{
      ...rollout(100),
      constraints: [{ contextName: "region", operator: "IN", values: ["us-west", "eu"] }],
    }],
  },
  { name: "off", enabled: false, strategies: [rollout(100)] },
  { name: "rollout", enabled: true, strategies: [rollout(40)] },
  {
    name: "colour",
    enabled: true,
    impressionData: true,
    strategies: [rollout(100, "userId")],
    variants: [
      { name: "red", weight: 500, stickiness: "userId", payload: { type: "string", value: "r" } },
      { name: "blue", weight: 500, stickiness: "userId", payload: { type: "string", value: "b" } },
    ],
  },
];

function flagsDoc(dev = DEV_FEATURES) {
  return {
    environments: {
      development: { version: 2, features: dev },
      production: {
        version: 2,
        features: [
          { name: "prod-only", enabled: true, strategies: [{ name: "default", parameters: {} }] },
        ],
      },
    },
  };
}

/** A service on the flags file `file`, served over TCP on loopback; dispose to stop both. */
async function served(settings: Settings) {
  const svc = await startService(settings);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, svc.app.fetch);
  await waitFor(() => svc.actors.flags.environmentsHeld > 0, 10_000, "flag definitions");
  return {
    svc,
    url: `http://127.0.0.1:${server.addr.port}/api/frontend`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await svc[Symbol.asyncDispose]();
    },
  };
}

function fileSettings(over: Record<string, string> = {}) {
  const file = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(file, JSON.stringify(flagsDoc()));
  return { file, settings: embeddedSettings({ FLAGS_FILE: file, ...over }) };
}

/**
 * The browser SDK pointed at `url`, started (its first fetch done); dispose to stop it.
 * `errors` holds its error events (an HTTP refusal is `{type: "HttpError", code}`).
 */
async function browserSdk(
  url: string,
  clientKey: string,
  opts: {
    environment?: string;
    headers?: Record<string, string>;
    context?: object;
    /** Seconds between polls; default none. A poll aborts the fetch of an `updateContext`
     * in flight, so tests that change the context poll with a second SDK. */
    refresh?: number;
  } = {},
) {
  const client = new UnleashClient({
    url,
    clientKey,
    appName: "config-service-frontend-test",
    environment: opts.environment,
    customHeaders: opts.headers,
    refreshInterval: opts.refresh ?? 0,
    metricsInterval: 0.3,
    metricsIntervalInitial: 0,
    storageProvider: new InMemoryStorageProvider(),
    // One session for every SDK of a test: `default` stickiness falls back to it.
    context: { sessionId: "session-1", ...opts.context },
  });
  const errors: unknown[] = [];
  client.on(EVENTS.ERROR, (e: unknown) => errors.push(e));
  await client.start();
  return {
    client,
    errors,
    [Symbol.dispose]() {
      client.stop();
    },
  };
}

/** `count` contexts over user ids and regions. */
function contexts(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    userId: `user-${i}`,
    properties: { region: ["us-west", "eu", "ap-south"][i % 3] },
  }));
}

Deno.test("frontendContext() keeps Unleash's root fields and makes every other member a property", () => {
  const ctx = frontendContext({
    userId: ["u1", "u2"],
    sessionId: "s",
    appName: "web",
    environment: "production",
    currentTime: "2026-01-02T03:04:05Z",
    "properties[region]": "eu",
    plan: "pro",
    properties: { tier: "gold" },
  }, DEV);
  assert.deepEqual(ctx, {
    environment: DEV,
    userId: "u1",
    sessionId: "s",
    appName: "web",
    currentTime: new Date("2026-01-02T03:04:05Z"),
    properties: { region: "eu", plan: "pro", tier: "gold" },
  });
});

ioTest(
  "Frontend API: the browser SDK pointed at the service answers the flags file's flags, sees a change, and its metrics are counted",
  async () => {
    const { file, settings } = fileSettings();
    await using s = await served(settings);
    using web = await browserSdk(s.url, "any-key-the-sdk-needs");
    const c = web.client;
    let red = 0;
    for (const ctx of contexts(60)) {
      await c.updateContext(ctx);
      assert.equal(c.isEnabled("dev-only"), true);
      assert.equal(c.isEnabled("prod-only"), false);
      assert.equal(c.isEnabled("off"), false);
      assert.equal(c.isEnabled("region"), ctx.properties.region !== "ap-south", ctx.userId);
      // Rollout and variants: what the service's own evaluation (spec-tested) answers.
      for (const flag of ["rollout", "colour"]) {
        const r = await call(s.svc.app, "POST", "/api/v1/feature-flags/evaluate", {
          flag_name: flag,
          user_id: ctx.userId,
          environment: DEV,
          context: { sessionId: "session-1", ...ctx.properties },
          type: flag === "colour" ? "string" : "boolean",
          default_value: flag === "colour" ? "none" : false,
        });
        if (flag === "rollout") assert.equal(c.isEnabled(flag), r.body.value, ctx.userId);
        else {
          const v = c.getVariant(flag);
          assert.equal(v.name, r.body.variant);
          assert.equal(v.payload?.value, r.body.value);
          assert.equal(v.feature_enabled, true);
          if (v.name === "red") red++;
        }
      }
    }
    assert.ok(red > 10 && red < 50, `${red} of 60 red`);
    assert.deepEqual(c.getVariant("dev-only"), {
      name: "disabled",
      enabled: false,
      feature_enabled: true,
      featureEnabled: true,
    });
    assert.equal(c.getAllToggles().find((t) => t.name === "colour")?.impressionData, true);

    // A change to the file: a polling SDK emits `update` and answers the new definitions.
    using poller = await browserSdk(s.url, "any-key-the-sdk-needs", { refresh: 0.3 });
    assert.equal(poller.client.isEnabled("dev-only"), true);
    const updated = new Promise((r) => poller.client.once(EVENTS.UPDATE, r));
    Deno.writeTextFileSync(
      file,
      JSON.stringify(flagsDoc(DEV_FEATURES.map((f) => ({ ...f, enabled: f.name === "off" })))),
    );
    await updated;
    await until(() => poller.client.isEnabled("dev-only"), (on) => !on, { what: "dev-only off" });
    assert.equal(poller.client.isEnabled("off"), true);
    assert.deepEqual(poller.errors, []);

    // Its usage reaches the service's SDK counters (the Client API's).
    await c.sendMetrics();
    const metrics = await call(s.svc.app, "GET", "/metrics");
    assert.match(metrics.text, /flag_sdk_answers_total\{[^}]*flag="dev-only"/);
    assert.deepEqual(web.errors, []);
  },
);

ioTest(
  "Frontend API: a token bound to production reads production only; an unbound one chooses by header",
  async () => {
    const { settings } = fileSettings({ API_TOKENS: TOKENS });
    await using s = await served(settings);
    // Raw in Authorization, as the SDK sends it; its context's `environment` is `default`.
    using prod = await browserSdk(s.url, PROD_TOKEN);
    assert.equal(prod.client.isEnabled("prod-only"), true);
    assert.equal(prod.client.isEnabled("dev-only"), false);
    assert.deepEqual(prod.errors, []);

    using sneaky = await browserSdk(s.url, PROD_TOKEN, { environment: DEV });
    assert.deepEqual(sneaky.errors[0], { type: "HttpError", code: 403 });
    assert.equal(sneaky.client.isEnabled("dev-only"), false);
    const byHeader = await call(s.svc.app, "GET", "/api/frontend", undefined, {
      authorization: PROD_TOKEN,
      "x-environment": DEV,
    });
    assert.equal(byHeader.status, 403);
    const byBody = await call(s.svc.app, "POST", "/api/frontend", {
      environment: DEV,
      context: {},
    }, { authorization: `Bearer ${PROD_TOKEN}` });
    assert.equal(byBody.status, 403);

    using chosen = await browserSdk(s.url, ANY_TOKEN, { headers: { "X-Environment": DEV } });
    assert.equal(chosen.client.isEnabled("dev-only"), true);
    using fallback = await browserSdk(s.url, ANY_TOKEN);
    assert.equal(fallback.client.isEnabled("dev-only"), true, "default: development");

    using nobody = await browserSdk(s.url, "not-a-token-0123456789abcdef");
    assert.deepEqual(nobody.errors[0], { type: "HttpError", code: 401 });
  },
);

ioTest("Frontend API: ETag and 304 on GET; POST takes the context from the body", async () => {
  const { settings } = fileSettings();
  await using s = await served(settings);
  const first = await call(s.svc.app, "GET", "/api/frontend?userId=1&properties%5Bregion%5D=eu");
  assert.equal(first.status, 200);
  const etag = first.headers.get("etag")!;
  assert.match(etag, /^W\/"[0-9a-f]{32}"$/);
  assert.ok(first.body.toggles.some((t: { name: string }) => t.name === "region"));
  const again = await call(s.svc.app, "GET", "/api/frontend?userId=1&region=eu", undefined, {
    "if-none-match": etag,
  });
  assert.equal(again.status, 304);
  const other = await call(s.svc.app, "GET", "/api/frontend?userId=1", undefined, {
    "if-none-match": etag,
  });
  assert.equal(other.status, 200);
  const posted = await call(s.svc.app, "POST", "/api/frontend", {
    context: { userId: "1", region: "eu" },
  });
  assert.equal(posted.text, first.text);
  const bad = await call(s.svc.app, "POST", "/api/frontend", "[1]");
  assert.equal(bad.status, 400);
  const badEnv = await call(s.svc.app, "GET", "/api/frontend?environment=nowhere");
  assert.equal(badEnv.status, 400);
  const reg = await call(s.svc.app, "POST", "/api/frontend/client/register", {
    appName: "web",
    instanceId: "browser",
  });
  assert.equal(reg.status, 200);
});

ioTest(
  "Frontend API: CORS for CORS_ORIGINS, preflight answered without a token, none by default",
  async () => {
    const preflight = {
      origin: ORIGIN,
      "access-control-request-method": "GET",
      "access-control-request-headers": "authorization, unleash-sdk, if-none-match",
    };
    {
      const { settings } = fileSettings({ API_TOKENS: TOKENS, CORS_ORIGINS: ORIGIN });
      await using s = await served(settings);
      const pre = await call(s.svc.app, "OPTIONS", "/api/frontend", undefined, preflight);
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), ORIGIN);
      assert.equal(pre.headers.get("access-control-allow-methods"), "GET, POST");
      assert.equal(
        pre.headers.get("access-control-allow-headers"),
        "authorization, unleash-sdk, if-none-match",
      );
      assert.match(pre.headers.get("vary")!, /Origin/);
      const metricsPre = await call(
        s.svc.app,
        "OPTIONS",
        "/api/frontend/client/metrics",
        undefined,
        { ...preflight, "access-control-request-method": "POST" },
      );
      assert.equal(metricsPre.headers.get("access-control-allow-methods"), "POST");

      const ok = await call(s.svc.app, "GET", "/api/frontend", undefined, {
        origin: ORIGIN,
        authorization: ANY_TOKEN,
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("access-control-allow-origin"), ORIGIN);
      assert.match(ok.headers.get("access-control-expose-headers")!, /ETag/);
      // A refusal carries them too, so the page can read why.
      const refused = await call(s.svc.app, "GET", "/api/frontend", undefined, { origin: ORIGIN });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get("access-control-allow-origin"), ORIGIN);

      const stranger = await call(s.svc.app, "OPTIONS", "/api/frontend", undefined, {
        ...preflight,
        origin: "https://evil.example",
      });
      assert.equal(stranger.headers.get("access-control-allow-origin"), null);
      assert.equal(stranger.headers.get("access-control-allow-methods"), null);
      // Only the Frontend API answers cross-origin.
      const other = await call(s.svc.app, "GET", "/api/client/features", undefined, {
        origin: ORIGIN,
        authorization: ANY_TOKEN,
      });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    }
    {
      const { settings } = fileSettings({ CORS_ORIGINS: "*" });
      await using s = await served(settings);
      const any = await call(s.svc.app, "GET", "/api/frontend", undefined, {
        origin: "https://anywhere.example",
      });
      assert.equal(any.headers.get("access-control-allow-origin"), "*");
    }
    {
      const { settings } = fileSettings();
      await using s = await served(settings);
      const pre = await call(s.svc.app, "OPTIONS", "/api/frontend", undefined, preflight);
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), null);
      const get = await call(s.svc.app, "GET", "/api/frontend", undefined, { origin: ORIGIN });
      assert.equal(get.headers.get("access-control-allow-origin"), null);
    }
  },
);

/** `UNLEASH_FRONTEND_TOKENS` (from scripts/stack.sh env) as a map. */
function frontendTokens(): Record<string, string> {
  return Object.fromEntries(
    (Deno.env.get("UNLEASH_FRONTEND_TOKENS") ?? "").split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );
}

serverTest(
  "unleash",
  [...UNLEASH_VARS, "UNLEASH_FRONTEND_TOKENS", "DATABASE_URL"],
  "Frontend API: the browser SDK through the service answers as through Unleash's own Frontend API, and both see a change",
  async () => {
    const admin = new UnleashAdmin();
    const db = await tempDatabase();
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
          constraints: [{ contextName: "region", operator: "IN", values: ["us-west", "eu"] }],
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
              payload: { type: "json", value: '{"c":"r"}' },
            },
            { name: "blue", weight: 500, weightType: "variable", stickiness: "userId" },
          ],
        }],
      });
      const plain = await admin.flag("plain", { [DEV]: [{ name: "default" }] });
      const flags = [flexible, constrained, variants, plain];
      await using s = await served(stackSettings({
        DATABASE_URL: db.url,
        UNLEASH_REFRESH_INTERVAL: "1",
        UNLEASH_DISABLE_METRICS: "true",
        ZOOKEEPER_HOSTS: "",
        KAFKA_BOOTSTRAP_SERVERS: "",
        API_TOKENS: TOKENS,
      }));
      const unleashFrontend = `${Deno.env.get("UNLEASH_URL")!.replace(/\/+$/, "")}/frontend`;
      using direct = await browserSdk(unleashFrontend, frontendTokens()[DEV]);
      using via = await browserSdk(s.url, ANY_TOKEN);
      await waitFor(
        async () => {
          await Promise.all([direct.client.updateContext({}), via.client.updateContext({})]);
          return direct.client.isEnabled(plain) && via.client.isEnabled(plain);
        },
        20_000,
        "both SDKs see the test's flags",
      );
      let enabled = 0;
      for (const ctx of contexts(60)) {
        await Promise.all([direct.client.updateContext(ctx), via.client.updateContext(ctx)]);
        for (const f of flags) {
          const want = direct.client.isEnabled(f);
          assert.equal(via.client.isEnabled(f), want, `${f} ${ctx.userId}`);
          if (want) enabled++;
          assert.deepEqual(via.client.getVariant(f), direct.client.getVariant(f), `${f}`);
        }
      }
      assert.ok(enabled > 60, `${enabled} enabled answers`);
      // The whole answer, as Unleash shapes it (other tests' flags left aside).
      const mine = (body: { toggles: { name: string }[] }) =>
        body.toggles.filter((t) => flags.includes(t.name));
      const q = "?userId=user-1&sessionId=session-1&properties%5Bregion%5D=eu";
      const theirs = await (await fetch(unleashFrontend + q, {
        headers: { authorization: frontendTokens()[DEV] },
      })).json();
      const ours = await call(s.svc.app, "GET", `/api/frontend${q}`, undefined, {
        authorization: ANY_TOKEN,
      });
      assert.deepEqual(
        mine(ours.body).sort((a, b) => a.name.localeCompare(b.name)),
        mine(theirs).sort((a, b) => a.name.localeCompare(b.name)),
      );

      // A change in Unleash: polling SDKs of both emit `update` and answer it.
      using directPoller = await browserSdk(unleashFrontend, frontendTokens()[DEV], {
        refresh: 0.5,
      });
      using viaPoller = await browserSdk(s.url, ANY_TOKEN, { refresh: 0.5 });
      assert.equal(viaPoller.client.isEnabled(plain), true);
      const pollers = [directPoller, viaPoller];
      const updates = pollers.map((w) => new Promise((r) => w.client.once(EVENTS.UPDATE, r)));
      await admin.toggle(plain, DEV, false);
      await Promise.all(updates);
      for (const w of pollers) {
        await until(() => w.client.isEnabled(plain), (on) => !on, { timeoutMs: 15_000 });
      }
      assert.deepEqual(via.errors, []);
      assert.deepEqual(viaPoller.errors, []);
    } finally {
      await admin.cleanup();
      await db.drop();
    }
  },
);
