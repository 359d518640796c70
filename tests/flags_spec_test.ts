/**
 * The official Unleash client specification (`@unleash/client-specification`, every file
 * of the pinned version, `tests` and `variantTests`) against our engine, through both the
 * SDK-shaped calls and the `evaluate()` the FlagActor answers with.
 */
import assert from "node:assert/strict";
import index from "@unleash/client-specification/specifications/index.json" with {
  type: "json",
};
import { type Context, FlagSet } from "../lib/flags/engine.ts";

/** Files we skip, with the reason. None: every file of 6.1.0 runs. */
const SKIPPED: Record<string, string> = {};

interface Spec {
  name: string;
  state: unknown;
  tests?: { description: string; context: Context; toggleName: string; expectedResult: boolean }[];
  variantTests?: {
    description: string;
    context: Context;
    toggleName: string;
    expectedResult: Record<string, unknown>;
  }[];
}

async function load(file: string): Promise<Spec> {
  const mod = await import(`@unleash/client-specification/specifications/${file}`, {
    with: { type: "json" },
  });
  return mod.default as Spec;
}

function contextOf(c: Context): Context {
  const ctx = { ...c };
  if (typeof ctx.currentTime === "string") ctx.currentTime = new Date(ctx.currentTime);
  return ctx;
}

Deno.test("client specification: the pinned version has the files we expect", () => {
  assert.ok(index.length >= 22, `only ${index.length} specification files`);
  for (const file of Object.keys(SKIPPED)) assert.ok(index.includes(file), file);
});

for (const file of index as string[]) {
  Deno.test({
    name: `client specification ${file}`,
    ignore: file in SKIPPED,
    async fn(t) {
      const spec = await load(file);
      const set = FlagSet.from(spec.state, file);
      for (const c of spec.tests ?? []) {
        await t.step(c.description, () => {
          const ctx = contextOf(c.context);
          assert.equal(set.isEnabled(c.toggleName, ctx), c.expectedResult, "isEnabled");
          assert.equal(set.evaluate(c.toggleName, ctx).enabled, c.expectedResult, "evaluate");
        });
      }
      for (const c of spec.variantTests ?? []) {
        await t.step(c.description, () => {
          const ctx = contextOf(c.context);
          const { featureEnabled: _, ...v } = set.getVariant(c.toggleName, ctx);
          const expected = { ...c.expectedResult };
          // The spec names the feature state `feature_enabled` (older files omit it).
          if (!("feature_enabled" in expected)) {
            delete (v as Record<string, unknown>).feature_enabled;
          }
          assert.deepEqual(stripUndefined(v), expected, "getVariant");
          const e = set.evaluate(c.toggleName, ctx);
          assert.deepEqual(
            stripUndefined({ ...e.variant, feature_enabled: e.enabled }),
            stripUndefined({ ...expected, feature_enabled: expected.feature_enabled ?? e.enabled }),
            "evaluate",
          );
        });
      }
    },
  });
}

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
