/**
 * Feature flags against the real Unleash server of the local stack (flags created through
 * its Admin API inside each test): seed shapes, parity with Unleash's own Node SDK for
 * gradual rollout, constraints and variants, a switch-off seen after the next sync, one
 * Kafka event per environment a change touched (with two service instances), and backend
 * tokens provisioned through the admin token.
 */
import assert from "node:assert/strict";
import { Unleash } from "unleash-client";
import { get, post, serverTest, stackSettings, startService, waitFor } from "./_helpers.ts";
import { readTopic, sleep, tempDatabase, tempTopic } from "./_pg.ts";
import { clientTokens, UNLEASH_VARS, UnleashAdmin } from "./_unleash.ts";

const VARS = [...UNLEASH_VARS, "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_HOST"];
const DEV = "development";

type Svc = Awaited<ReturnType<typeof startService>>;

/** A service on the stack with its own database and topic, polling Unleash every second. */
async function service(over: Record<string, string> = {}) {
  const [db, topic] = await Promise.all([tempDatabase(), tempTopic(1)]);
  const settings = stackSettings({
    DATABASE_URL: db.url,
    FEATURE_FLAG_KAFKA_TOPIC: topic.topic,
    UNLEASH_REFRESH_INTERVAL: "1",
    UNLEASH_DISABLE_METRICS: "true",
    ZOOKEEPER_HOSTS: "",
    ...over,
  });
  return { db, topic, settings };
}

const evaluate = (svc: Svc, body: Record<string, unknown>) =>
  post(svc.app, "/api/v1/feature-flags/evaluate", { environment: DEV, ...body });

serverTest("unleash", VARS, "seed shapes and the same answers as Unleash's Node SDK", async () => {
  const admin = new UnleashAdmin();
  const { db, topic, settings } = await service();
  let sdk: Unleash | undefined;
  try {
    const rollout = await admin.flag("rollout", {
      [DEV]: [{
        name: "flexibleRollout",
        parameters: { rollout: "40", stickiness: "default", groupId: "rollout" },
      }],
    });
    const constrained = await admin.flag("constrained", {
      [DEV]: [{
        name: "flexibleRollout",
        parameters: { rollout: "100", stickiness: "default", groupId: "c" },
        constraints: [
          { contextName: "region", operator: "IN", values: ["us-west", "eu-north"] },
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
    await using svc = await startService(settings);
    sdk = new Unleash({
      url: settings.UNLEASH_URL!,
      appName: "config-service-test",
      environment: DEV,
      customHeaders: { Authorization: clientTokens()[DEV] },
      refreshInterval: 1_000,
      disableMetrics: true,
    });
    sdk.on("error", () => {});
    await waitFor(
      () => sdk!.getFeatureToggleDefinition(variants) !== undefined,
      15_000,
      "SDK sync",
    );
    await waitFor(
      // Sticky on userId: without one the rollout does not match.
      async () =>
        (await evaluate(svc, { flag_name: variants, user_id: "u", default_value: "" })).body
          .value !== "",
      15_000,
      "service sync",
    );

    let on = 0;
    for (let i = 0; i < 200; i++) {
      const userId = `user-${i}`;
      const region = ["us-west", "eu-north", "ap-south"][i % 3];
      const age = String(20 + (i % 25));
      const ctx = { userId, environment: DEV, properties: { region, age } };
      const r = await evaluate(svc, { flag_name: rollout, user_id: userId });
      assert.equal(r.body.value, sdk.isEnabled(rollout, ctx), `${rollout} for ${userId}`);
      if (r.body.value) on++;
      const c = await evaluate(svc, {
        flag_name: constrained,
        user_id: userId,
        context: { region, age },
      });
      assert.equal(c.body.value, sdk.isEnabled(constrained, ctx), `${constrained} for ${userId}`);
      const v = await evaluate(svc, { flag_name: variants, user_id: userId, default_value: "" });
      const sv = sdk.getVariant(variants, ctx);
      assert.equal(v.body.variant, sv.name, `${variants} for ${userId}`);
      assert.equal(v.body.value, sv.payload?.value);
    }
    assert.ok(on > 50 && on < 110, `40% rollout gave ${on}/200`);

    // Seed shapes against Unleash.
    const list = await get(svc.app, `/api/v1/feature-flags?environment=${DEV}`);
    assert.equal(list.status, 200);
    const mine = list.body.find((f: { name: string }) => f.name === rollout);
    assert.deepEqual({ name: mine.name, enabled: mine.enabled }, { name: rollout, enabled: true });
    const one = await get(svc.app, `/api/v1/feature-flags/${constrained}?environment=${DEV}`);
    assert.equal(one.body.name, constrained);
    assert.equal(one.body.enabled, true);
    assert.deepEqual(one.body.variants, []);
    assert.equal(one.body.strategies[0].name, "flexibleRollout");
    assert.equal(one.body.strategies[0].constraints.length, 2);
    const sync = await post(svc.app, `/api/v1/feature-flags/sync?environment=${DEV}`, {});
    assert.equal(sync.status, 200);
    assert.equal(sync.body.environment, DEV);
    assert.ok(sync.body.flags_synced >= 3);
    const b = await post(svc.app, "/api/v1/feature-flags/evaluate/boolean", {
      flag_name: constrained,
      user_id: "u",
      context: { region: "us-west", age: 40 },
      environment: DEV,
    });
    assert.deepEqual(b.body, {
      flag_name: constrained,
      value: true,
      reason: "TARGETING_MATCH",
      environment: DEV,
    });
  } finally {
    sdk?.destroy();
    await admin.cleanup();
    await Promise.all([db.drop(), topic.drop()]);
  }
});

serverTest(
  "unleash",
  VARS,
  "a switch-off is seen after the next sync; one Kafka event per environment it changed in",
  async () => {
    const admin = new UnleashAdmin();
    const { db, topic, settings } = await service();
    const reader = await readTopic(topic.topic);
    try {
      const f = await admin.flag("events", {
        [DEV]: [{ name: "default" }],
        production: [{ name: "default" }],
      });
      // Two instances on one database: each change is still published once.
      await using a = await startService(settings);
      await using b = await startService({ ...settings, SERVICE_INSTANCE_ID: "second" });
      for (const svc of [a, b]) {
        await waitFor(
          async () => (await evaluate(svc, { flag_name: f })).body.value === true,
          15_000,
          "first sync",
        );
      }
      // Both environments seen by both instances: later events are the changes below. (A
      // flag that reaches an environment's client API after an instance's first sync is
      // published as "created" before that.)
      for (const svc of [a, b]) {
        await waitFor(
          async () =>
            (await post(svc.app, "/api/v1/feature-flags/evaluate/boolean", {
              flag_name: f,
              environment: "production",
            })).body.value === true,
          15_000,
          "production synced",
        );
      }
      await sleep(1_500);
      const baseline = reader.messages.length;
      const mine = () =>
        reader.messages.slice(baseline).filter((m) => (m.value as { flag?: string }).flag === f);

      await admin.toggle(f, DEV, false);
      const t0 = Date.now();
      await waitFor(
        async () => (await evaluate(a, { flag_name: f })).body.reason === "DISABLED",
        10_000,
        "switch-off seen",
      );
      const seenAfter = Date.now() - t0;
      await reader.until(() => mine().length >= 1, 15_000);
      const prodStill = await post(a.app, "/api/v1/feature-flags/evaluate/boolean", {
        flag_name: f,
        environment: "production",
      });
      assert.equal(prodStill.body.value, true);

      // A change in both environments: one event each.
      for (const env of [DEV, "production"]) {
        await admin.addStrategy(f, env, {
          name: "flexibleRollout",
          parameters: { rollout: "100", stickiness: "default", groupId: f },
          constraints: [{ contextName: "userId", operator: "IN", values: ["someone"] }],
        });
      }
      await reader.until(
        () => mine().length >= 3,
        15_000,
      );
      await sleep(3_000); // time for duplicates to show up, if any
      const events = mine().map((m) => m.value as Record<string, string>);
      assert.deepEqual(
        events.map((e) => [e.environment, e.change]).sort(),
        [[DEV, "disabled"], [DEV, "updated"], ["production", "updated"]],
        JSON.stringify(events),
      );
      for (const e of events) {
        assert.equal(e.flag, f);
        assert.ok(!Number.isNaN(Date.parse(e.at)));
      }
      assert.equal(mine()[0].key, `${DEV}:${f}`);
      console.log(`switch-off seen by the service ${seenAfter} ms after the Admin API call`);
    } finally {
      await reader.stop();
      await admin.cleanup();
      await Promise.all([db.drop(), topic.drop()]);
    }
  },
);

serverTest("unleash", VARS, "without client tokens the admin token provisions them", async () => {
  const admin = new UnleashAdmin();
  const { db, topic, settings } = await service({
    UNLEASH_CLIENT_TOKENS: "",
    UNLEASH_APP_NAME: `cs-test-${admin.prefix}`,
  });
  try {
    const f = await admin.flag("provisioned", { staging: [{ name: "default" }] });
    await using s = await startService(settings);
    await waitFor(
      async () => {
        const r = await post(s.app, "/api/v1/feature-flags/sync?environment=staging", {});
        return r.status === 200 &&
          (await post(s.app, "/api/v1/feature-flags/evaluate/boolean", {
              flag_name: f,
              environment: "staging",
            })).body.value === true;
      },
      15_000,
      "sync with a provisioned token",
    );
  } finally {
    await admin.cleanup();
    await Promise.all([db.drop(), topic.drop()]);
  }
});

serverTest("unleash", VARS, "usage metrics reach Unleash (yes/no per environment)", async () => {
  const admin = new UnleashAdmin();
  const { db, topic, settings } = await service({
    UNLEASH_DISABLE_METRICS: "false",
    UNLEASH_METRICS_INTERVAL: "1",
  });
  try {
    const f = await admin.flag("metrics", {
      [DEV]: [{
        name: "flexibleRollout",
        parameters: { rollout: "100", stickiness: "default", groupId: "m" },
        constraints: [{
          contextName: "userId",
          operator: "IN",
          values: ["yes-1", "yes-2", "yes-3"],
        }],
      }],
    });
    await using s = await startService(settings);
    await waitFor(
      async () => (await evaluate(s, { flag_name: f, user_id: "yes-1" })).body.value === true,
      15_000,
      "sync",
    );
    // The wait above counted some yes answers already; these add 2 yes and 4 no.
    for (const u of ["yes-2", "yes-3", "no-1", "no-2", "no-3", "no-4"]) {
      await evaluate(s, { flag_name: f, user_id: u });
    }
    const usage = await waitFor(
      async () => {
        const u = (await admin.usage(f))[DEV];
        return u && u.no === 4 && u.yes >= 3 ? u : undefined;
      },
      30_000,
      "metrics in Unleash",
    );
    assert.equal(usage?.no, 4);
  } finally {
    await admin.cleanup();
    await Promise.all([db.drop(), topic.drop()]);
  }
});

serverTest(
  "unleash",
  VARS,
  "a new instance starts from the definitions cached in Redis",
  async () => {
    const admin = new UnleashAdmin();
    const first = await service();
    // The second instance never calls Unleash and has an empty store of its own.
    const second = await service({
      UNLEASH_AUTO_SYNC_ENABLED: "false",
      UNLEASH_AUTO_SYNC_ON_STARTUP: "false",
    });
    try {
      const f = await admin.flag("redis", { [DEV]: [{ name: "default" }] });
      {
        await using a = await startService(first.settings);
        await waitFor(
          async () => (await evaluate(a, { flag_name: f })).body.value === true,
          15_000,
          "sync",
        );
      }
      await using b = await startService(second.settings);
      const r = await evaluate(b, { flag_name: f });
      assert.deepEqual([r.body.value, r.body.reason], [true, "CACHED"], JSON.stringify(r.body));
    } finally {
      await admin.cleanup();
      await Promise.all([
        first.db.drop(),
        first.topic.drop(),
        second.db.drop(),
        second.topic.drop(),
      ]);
    }
  },
);
