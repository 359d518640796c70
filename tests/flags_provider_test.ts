/**
 * Our OpenFeature provider: the direct evaluation the HTTP API uses answers exactly what
 * `@openfeature/server-sdk` answers through the same provider, for every type, reason and
 * error; and the Unleash context mapping.
 */
import assert from "node:assert/strict";
import { OpenFeature } from "@openfeature/server-sdk";
import { FlagSet } from "../lib/flags/engine.ts";
import {
  type EnvView,
  evaluateDirect,
  evaluateTyped,
  type FlagType,
  type Freshness,
  LocalUnleashProvider,
  openFeatureClient,
  unleashContext,
} from "../lib/flags/provider.ts";

const set = FlagSet.from({
  version: 2,
  features: [
    { name: "on", enabled: true, strategies: [] },
    { name: "off", enabled: false, strategies: [{ name: "default" }] },
    {
      name: "half",
      enabled: true,
      strategies: [{
        name: "flexibleRollout",
        parameters: { rollout: "50", stickiness: "userId", groupId: "half" },
      }],
    },
    {
      name: "regional",
      enabled: true,
      strategies: [{
        name: "default",
        constraints: [{ contextName: "region", operator: "IN", values: ["eu"] }],
        variants: [{ name: "s", weight: 1000, payload: { type: "string", value: "x" } }],
      }],
    },
    {
      name: "num",
      enabled: true,
      strategies: [{
        name: "default",
        variants: [{ name: "n", weight: 1000, payload: { type: "number", value: "2.5" } }],
      }],
    },
    {
      name: "obj",
      enabled: true,
      strategies: [{
        name: "default",
        variants: [{ name: "j", weight: 1000, payload: { type: "json", value: '{"a":[1]}' } }],
      }],
    },
    {
      name: "split",
      enabled: true,
      strategies: [],
      variants: [
        { name: "a", weight: 500, payload: { type: "string", value: "A" }, stickiness: "userId" },
        { name: "b", weight: 500, payload: { type: "string", value: "B" }, stickiness: "userId" },
      ],
    },
  ],
});

const DEFAULTS: Record<FlagType, unknown> = {
  boolean: true,
  string: "d",
  number: 7,
  integer: 3,
  float: 1.5,
  object: { d: 1 },
};

Deno.test("provider: direct evaluation equals the OpenFeature SDK's, for every case", async () => {
  let freshness: Freshness = "live";
  let fallback = true;
  const views = (env: string): EnvView | undefined =>
    env === "empty" ? undefined : { set, freshness };
  const mk = () => new LocalUnleashProvider(views, { fallback, defaultEnvironment: "development" });
  let n = 0;
  for (const fb of [true, false]) {
    fallback = fb;
    const provider = mk();
    const client = await openFeatureClient(provider);
    for (const f of ["live", "cached", "stale"] as Freshness[]) {
      freshness = f;
      for (const flag of ["on", "off", "half", "regional", "num", "obj", "split", "missing"]) {
        for (const type of Object.keys(DEFAULTS) as FlagType[]) {
          for (const env of ["development", "empty"]) {
            for (const user of ["u1", "u2", "u3"]) {
              const ctx = {
                targetingKey: user,
                region: user === "u1" ? "eu" : "us",
                environment: env,
              };
              const a = evaluateDirect(provider, flag, type, DEFAULTS[type], ctx);
              const b = await evaluateTyped(client, flag, type, DEFAULTS[type], ctx);
              assert.deepEqual(a, b, JSON.stringify({ flag, type, env, user, f, fb }));
              n++;
            }
          }
        }
      }
    }
  }
  await OpenFeature.clearProviders();
  assert.equal(n, 2 * 3 * 8 * 6 * 2 * 3);
});

Deno.test("provider: answers by type, reason and error", () => {
  const provider = new LocalUnleashProvider(() => ({ set, freshness: "live" }), {
    fallback: true,
    defaultEnvironment: "development",
  });
  const ev = (flag: string, type: FlagType, ctx = {}) =>
    evaluateDirect(provider, flag, type, DEFAULTS[type], { targetingKey: "u1", ...ctx });
  assert.deepEqual(ev("on", "boolean"), { value: true, reason: "STATIC", variant: "enabled" });
  assert.deepEqual(ev("off", "boolean"), { value: false, reason: "DISABLED", variant: "disabled" });
  assert.deepEqual(ev("regional", "string", { region: "eu" }), {
    value: "x",
    reason: "TARGETING_MATCH",
    variant: "s",
  });
  assert.deepEqual(ev("regional", "string", { region: "us" }), {
    value: "d",
    reason: "DEFAULT",
    variant: "disabled",
  });
  assert.deepEqual(ev("num", "float"), { value: 2.5, reason: "STATIC", variant: "n" });
  assert.deepEqual(ev("num", "integer"), {
    value: 3,
    reason: "ERROR",
    error_code: "TYPE_MISMATCH",
  });
  assert.deepEqual(ev("obj", "object"), { value: { a: [1] }, reason: "STATIC", variant: "j" });
  assert.deepEqual(ev("obj", "string"), {
    value: "d",
    reason: "ERROR",
    error_code: "TYPE_MISMATCH",
  });
  assert.equal(ev("split", "string").reason, "SPLIT");
  assert.deepEqual(ev("missing", "boolean"), {
    value: true,
    reason: "ERROR",
    error_code: "FLAG_NOT_FOUND",
  });
});

Deno.test("provider: OpenFeature context → Unleash context", () => {
  assert.deepEqual(
    unleashContext({
      targetingKey: "t",
      sessionId: "s",
      remoteAddress: "10.0.0.1",
      appName: "app",
      environment: "ignored",
      currentTime: "2024-01-01T00:00:00Z",
      region: "eu",
      age: 31,
      beta: true,
      skip: null,
    }, "production"),
    {
      environment: "production",
      sessionId: "s",
      remoteAddress: "10.0.0.1",
      appName: "app",
      currentTime: new Date("2024-01-01T00:00:00Z"),
      userId: "t",
      properties: { region: "eu", age: "31", beta: "true" },
    },
  );
  assert.equal(unleashContext({ targetingKey: "t", userId: "u" }, "x").userId, "u");
});
