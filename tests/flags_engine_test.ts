/**
 * Our engine keeps each IN / NOT_IN constraint's cleaned values as a set instead of letting
 * the SDK clean the list at every evaluation. These tests hold it equal to the SDK's own
 * client, unwrapped, over hostile lists and contexts.
 */
import assert from "node:assert/strict";
import clientModule from "unleash-client/lib/client.js";
import { defaultStrategies } from "unleash-client/lib/strategy/index.js";
import { type Context, type FeatureInterface, FlagSet } from "../lib/flags/engine.ts";

type ClientClass = typeof import("unleash-client/lib/client.js").default;
const UnleashClient: ClientClass = (clientModule as unknown as { default?: ClientClass }).default ??
  (clientModule as unknown as ClientClass);

/** The SDK's client over the same definitions, with its own strategies untouched. */
function sdkClient(set: FlagSet) {
  const repository = {
    getToggle: (name: string) => set.features.get(name),
    getSegment: (id: number) => set.segments.get(id),
    getToggles: () => [...set.features.values()],
  };
  const c = new UnleashClient(repository as never, defaultStrategies);
  c.on("warn", () => {});
  c.on("error", () => {});
  return c;
}

/** A small seeded generator, so a failure repeats. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const VALUES: unknown[] = [
  "a",
  " a",
  "a ",
  "",
  " ",
  "b",
  "1",
  "1.0",
  "true",
  "null",
  "undefined",
  "\u00a0a",
  "A",
  1,
  0,
  null,
  true,
];
const CONTEXT_VALUES: unknown[] = [
  "a",
  " a",
  "",
  "b",
  "1",
  1,
  0,
  true,
  "true",
  null,
  undefined,
  "A",
];

Deno.test("engine: IN and NOT_IN answer as the SDK's own operator, hostile lists included", () => {
  const next = rng(42);
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const features: FeatureInterface[] = [];
  for (let i = 0; i < 300; i++) {
    const values = next() < 0.1
      ? pick([undefined, "a", 7, {}] as unknown[])
      : Array.from({ length: Math.floor(next() * 5) }, () => pick(VALUES));
    const field = pick(["userId", "region", "environment", "appName"]);
    features.push({
      name: `f${i}`,
      enabled: true,
      strategies: [{
        name: "default",
        parameters: {},
        constraints: [{
          contextName: field,
          operator: pick(["IN", "NOT_IN"]),
          values,
          inverted: next() < 0.3,
        }],
      }],
    } as unknown as FeatureInterface);
  }
  const ours = FlagSet.from({ version: 2, features });
  const theirs = sdkClient(ours);
  let compared = 0;
  for (let i = 0; i < 3000; i++) {
    const f = `f${Math.floor(next() * features.length)}`;
    const ctx: Record<string, unknown> = { properties: {} };
    for (const k of ["userId", "appName", "environment"]) {
      if (next() < 0.7) ctx[k] = pick(CONTEXT_VALUES);
    }
    if (next() < 0.7) (ctx.properties as Record<string, unknown>).region = pick(CONTEXT_VALUES);
    const c = ctx as Context;
    let want: unknown, got: unknown;
    try {
      want = theirs.isEnabled(f, c, () => false);
    } catch (e) {
      want = `throws ${(e as Error).name}`;
    }
    try {
      got = ours.isEnabled(f, c);
    } catch (e) {
      got = `throws ${(e as Error).name}`;
    }
    assert.equal(
      got,
      want,
      `${f} ${JSON.stringify(features[Number(f.slice(1))])} ${JSON.stringify(c)}`,
    );
    compared++;
  }
  assert.equal(compared, 3000);
});

Deno.test("engine: a segment's IN constraint and a 200-user list answer as the SDK's", () => {
  const users = Array.from({ length: 200 }, (_, i) => ` user-${i} `);
  const set = FlagSet.from({
    version: 2,
    features: [{
      name: "list",
      enabled: true,
      strategies: [{
        name: "flexibleRollout",
        parameters: { rollout: "100", stickiness: "default", groupId: "list" },
        constraints: [{ contextName: "userId", operator: "IN", values: users }],
        segments: [1],
      }],
    }],
    segments: [{
      id: 1,
      constraints: [{ contextName: "region", operator: "NOT_IN", values: ["ap-south", ""] }],
    }],
  });
  const theirs = sdkClient(set);
  for (let i = 0; i < 400; i++) {
    const ctx: Context = {
      userId: `user-${i}`,
      properties: { region: ["eu-west", "ap-south", " ap-south"][i % 3] },
    };
    assert.equal(set.isEnabled("list", ctx), theirs.isEnabled("list", ctx, () => false), `${i}`);
  }
});
