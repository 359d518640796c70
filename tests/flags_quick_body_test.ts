/**
 * The hand-written checks of the evaluation bodies (lib/flags/quick_body.ts) against the
 * zod schemas they stand in for: over random near-valid bodies, whatever the quick check
 * accepts, zod accepts with the same result (after the whole body's depth check); the
 * rest is left to zod. And the bodies clients send do take the quick path.
 */
import assert from "node:assert/strict";
import { BooleanBody, BulkBody, checkJsonDepth, EvaluateBody } from "../lib/flags/api.ts";
import { quickBulkBody, quickEvaluateBody } from "../lib/flags/quick_body.ts";

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const next = rng(7);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
const str = (n: number) => "x".repeat(n);

function deep(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = next() < 0.5 ? [v] : { a: v };
  return v;
}

const SCALARS = [
  "",
  "a",
  str(64),
  str(65),
  str(128),
  str(129),
  str(255),
  str(256),
  str(257),
  str(1024),
  str(1025),
  0,
  -1,
  1.5,
  1e21,
  true,
  false,
  null,
] as const;

function anyValue(): unknown {
  const r = next();
  if (r < 0.5) return pick(SCALARS);
  if (r < 0.6) return [];
  if (r < 0.7) return {};
  if (r < 0.8) return { a: pick(SCALARS), b: [pick(SCALARS)] };
  if (r < 0.9) return deep(pick([1, 2, 120, 124, 125, 126, 127, 128, 129]));
  return pick(["boolean", "string", "number", "integer", "float", "object", "bool"]);
}

function maybe(o: Record<string, unknown>, k: string, gen: () => unknown, p = 0.6): void {
  if (next() < p) o[k] = gen();
}

function aContext(): unknown {
  if (next() < 0.1) return anyValue();
  const c: Record<string, unknown> = {};
  const n = pick([0, 1, 3, 64, 65]);
  for (let i = 0; i < n; i++) {
    const k = next() < 0.05 ? str(pick([128, 129])) : next() < 0.02 ? "__proto__" : `k${i}`;
    c[k] = next() < 0.9 ? pick(SCALARS) : anyValue();
  }
  return c;
}

function anEvaluateBody(): unknown {
  if (next() < 0.03) return anyValue();
  const b: Record<string, unknown> = {};
  maybe(b, "flag_name", () => next() < 0.8 ? `flag-${Math.floor(next() * 9)}` : anyValue(), 0.9);
  maybe(b, "user_id", () => next() < 0.6 ? `user-${Math.floor(next() * 99)}` : anyValue());
  maybe(b, "context", aContext);
  maybe(b, "default_value", anyValue);
  maybe(
    b,
    "type",
    () => next() < 0.7 ? pick(["boolean", "string", "object", "x"]) : anyValue(),
    0.3,
  );
  maybe(b, "environment", () => next() < 0.7 ? "development" : anyValue(), 0.5);
  maybe(b, "extra", anyValue, 0.2);
  return JSON.parse(JSON.stringify(b));
}

function aBulkBody(): unknown {
  if (next() < 0.03) return anyValue();
  const b: Record<string, unknown> = {};
  maybe(b, "flags", () => {
    if (next() < 0.05) return anyValue();
    const n = pick([0, 1, 2, 20, 200, 201]);
    return Array.from({ length: n }, () => {
      if (next() < 0.02) return anyValue();
      const f: Record<string, unknown> = {};
      maybe(f, "flag_name", () => next() < 0.9 ? "f" : anyValue(), 0.95);
      maybe(f, "default_value", anyValue, 0.5);
      maybe(f, "type", () => pick(["boolean", "string", "x"]), 0.2);
      maybe(f, "extra", anyValue, 0.05);
      return f;
    });
  }, 0.95);
  maybe(b, "user_id", () => next() < 0.6 ? "user-1" : anyValue());
  maybe(b, "context", aContext);
  maybe(b, "environment", () => next() < 0.7 ? "development" : anyValue(), 0.5);
  maybe(b, "extra", anyValue, 0.2);
  return JSON.parse(JSON.stringify(b));
}

/** zod's answer as the evaluator would get it: null when the depth check or zod refuses. */
function viaZod(
  schema: { safeParse(v: unknown): { success: boolean; data?: unknown } },
  raw: unknown,
) {
  try {
    checkJsonDepth(raw);
  } catch {
    return null;
  }
  const r = schema.safeParse(raw);
  return r.success ? r.data : null;
}

Deno.test("quick body: what the quick check accepts, zod accepts with the same result", () => {
  let quick = 0;
  for (let i = 0; i < 6000; i++) {
    const op = pick(["evaluate", "boolean"] as const);
    const raw = anEvaluateBody();
    const q = quickEvaluateBody(raw, op);
    if (q === null) continue;
    quick++;
    const z = viaZod(op === "boolean" ? BooleanBody : EvaluateBody, raw);
    assert.notEqual(z, null, `${op}: quick accepted what zod refuses: ${JSON.stringify(raw)}`);
    assert.deepEqual(q, z, `${op}: ${JSON.stringify(raw)}`);
  }
  assert.ok(quick > 300, `the quick path took ${quick} bodies`);
});

Deno.test("quick body: bulk bodies the quick check accepts, zod accepts the same", () => {
  let quick = 0;
  for (let i = 0; i < 3000; i++) {
    const raw = aBulkBody();
    const q = quickBulkBody(raw);
    if (q === null) continue;
    quick++;
    const z = viaZod(BulkBody, raw);
    assert.notEqual(z, null, `bulk: quick accepted what zod refuses: ${JSON.stringify(raw)}`);
    assert.deepEqual(q, z, `bulk: ${JSON.stringify(raw)}`);
  }
  assert.ok(quick > 100, `the quick path took ${quick} bodies`);
});

Deno.test("quick body: the bodies clients send take the quick path", () => {
  const one = {
    flag_name: "new-ui",
    user_id: 42,
    context: { region: "eu-west", plan: "pro", beta: true, score: 3, none: null },
    default_value: { a: [1, { b: 2 }] },
    type: "object",
    environment: "development",
  };
  assert.deepEqual(quickEvaluateBody(one, "evaluate"), { ...one, user_id: "42" });
  assert.deepEqual(
    quickEvaluateBody({ flag_name: "f", default_value: true }, "boolean"),
    { flag_name: "f", default_value: true },
  );
  const bulk = {
    flags: Array.from({ length: 20 }, (_, i) => ({ flag_name: `f${i}`, default_value: i })),
    user_id: "u",
    context: { region: "eu-west" },
  };
  assert.deepEqual(quickBulkBody(bulk), bulk);
  // An unknown field is dropped, as zod drops it; a deep one is zod's to refuse.
  assert.deepEqual(quickEvaluateBody({ flag_name: "f", x: 1 }, "evaluate"), { flag_name: "f" });
  assert.equal(quickEvaluateBody({ flag_name: "f", x: deep(3) }, "evaluate"), null);
});

Deno.test("quick body: at each limit, the quick check and zod agree", () => {
  const agree = (raw: unknown, op: "evaluate" | "boolean" | "bulk") => {
    const q = op === "bulk" ? quickBulkBody(raw) : quickEvaluateBody(raw, op);
    const z = viaZod(op === "bulk" ? BulkBody : op === "boolean" ? BooleanBody : EvaluateBody, raw);
    if (q !== null) assert.deepEqual(q, z, `${op}: ${JSON.stringify(raw).slice(0, 200)}`);
    return q !== null;
  };
  const nested = (n: number) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  for (let n = 120; n <= 130; n++) {
    agree({ flag_name: "f", default_value: nested(n) }, "evaluate");
    agree({ flags: [{ flag_name: "f", default_value: nested(n) }] }, "bulk");
  }
  for (let n = 60; n <= 66; n++) {
    const context = Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    assert.equal(agree({ flag_name: "f", context }, "evaluate"), n <= 64);
    assert.equal(agree({ flags: [{ flag_name: "f" }], context }, "bulk"), n <= 64);
  }
  for (
    const [field, limit] of [["flag_name", 255], ["user_id", 256], ["environment", 64]] as const
  ) {
    for (const len of [limit, limit + 1]) {
      assert.equal(
        agree({ flag_name: "f", [field]: str(len) }, "evaluate"),
        len <= limit,
        `${field} of ${len}`,
      );
    }
  }
  for (const len of [128, 129]) {
    assert.equal(agree({ flag_name: "f", context: { [str(len)]: 1 } }, "boolean"), len <= 128);
  }
  for (const len of [1024, 1025]) {
    assert.equal(agree({ flag_name: "f", context: { a: str(len) } }, "evaluate"), len <= 1024);
  }
  for (const n of [0, 1, 200, 201]) {
    const flags = Array.from({ length: n }, () => ({ flag_name: "f" }));
    assert.equal(agree({ flags }, "bulk"), n >= 1 && n <= 200);
  }
  assert.equal(agree({ flag_name: "f", default_value: 1 }, "boolean"), false);
  assert.equal(agree({ flag_name: "" }, "evaluate"), false);
});
