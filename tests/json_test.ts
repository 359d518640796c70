import assert from "node:assert/strict";
import {
  deepFields,
  duplicateKeys,
  inexactNumberErrors,
  inexactNumbers,
  MAX_JSON_DEPTH,
  nestedDeeperThan,
  readsBackAsWritten,
} from "../lib/json.ts";

/** `[[…]]` nested `n` levels. */
const arrays = (n: number) => "[".repeat(n) + "]".repeat(n);
const reads = (literal: string) => readsBackAsWritten(literal, JSON.parse(literal));

Deno.test("readsBackAsWritten() accepts a number respelled but equal", () => {
  for (
    const literal of [
      "0",
      "-0",
      "0.0e5",
      "1",
      "1.0",
      "1e3",
      "1E+3",
      "0.1e+5",
      "0.10",
      "0.1",
      "-12.50e-3",
      "100",
      "1e21",
      "5e-324",
      "0.30000000000000004",
      "9007199254740991",
      "-9007199254740991",
      "9007199254740992",
      "9007199254740994",
      "1.7976931348623157e308",
    ]
  ) {
    assert.equal(reads(literal), true, literal);
  }
});

Deno.test("readsBackAsWritten() refuses a number that reads back as another", () => {
  for (
    const literal of [
      "1e400",
      "-1e400",
      "1E309",
      "1e-400",
      "12345678901234567890",
      "-12345678901234567890",
      "9007199254740993",
      "123456789012345678901234567890",
      "0.1000000000000000000001",
      "1.7976931348623158e308",
      "1" + "0".repeat(400),
    ]
  ) {
    assert.equal(reads(literal), false, literal);
  }
});

Deno.test("readsBackAsWritten() stays linear on a long run of inner zeros", () => {
  const literal = `1${"0".repeat(500_000)}1`;
  const t0 = performance.now();
  assert.equal(readsBackAsWritten(literal, 1), false);
  assert.equal(readsBackAsWritten(`0.${"0".repeat(500_000)}1`, 0), false);
  assert.ok(performance.now() - t0 < 1_000);
});

Deno.test("inexactNumbers() names each inexact number by its path, in document order", () => {
  const text = '{"value": {"limits": {"max": 1e400, "min": [1, 2, 12345678901234567890]},' +
    ' "ok": 1.0, "s": "1e400 12345678901234567890"}, "": {"": -1e400}, "d": 0.10000000000000000001}';
  assert.deepEqual(
    inexactNumbers(text).map((f) => [f.path, f.source, f.value]),
    [
      [["value", "limits", "max"], "1e400", Infinity],
      [["value", "limits", "min", "2"], "12345678901234567890", 12345678901234567000],
      [["", ""], "-1e400", -Infinity],
      [["d"], "0.10000000000000000001", 0.1],
    ],
  );
  assert.deepEqual(inexactNumbers("1e400").map((f) => f.path), [[]]);
});

Deno.test("inexactNumbers() finds none in exact numbers and digits inside strings", () => {
  assert.deepEqual(inexactNumbers('{"a": [1.0, 1e3, 1E+3, 9007199254740991, 0.1, -0]}'), []);
  assert.deepEqual(inexactNumbers('{"a": "12345678901234567890", "b": "1e400"}'), []);
});

Deno.test("inexactNumbers() stops at limit", () => {
  const text = JSON.stringify(Array.from({ length: 50 }, () => 0)).replaceAll("0", "1e400");
  assert.equal(inexactNumbers(text).length, 20);
  assert.equal(inexactNumbers(text, 3).length, 3);
});

Deno.test("inexactNumbers() throws SyntaxError for a bad text it parses, skips one it need not", () => {
  assert.throws(() => inexactNumbers('{"a": 12345678901234567890'), SyntaxError);
  // No exponent and no long run of digits: no number in it can be inexact, so no parse.
  assert.deepEqual(inexactNumbers("{oops"), []);
});

Deno.test("inexactNumberErrors() names the path, says what to do, and leaves bad JSON alone", () => {
  const errors = inexactNumberErrors(
    '{"value": {"limits": {"max": 1e400}, "ids": [12345678901234567890]}}',
  );
  assert.deepEqual(errors.map((e) => [e.field, e.in]), [
    ["value.limits.max", "body"],
    ["value.ids.0", "body"],
  ]);
  assert.match(errors[0].message, /^is 1e400, .*stored as null.*send it as a string/);
  assert.match(
    errors[1].message,
    /^is 12345678901234567890, which would be stored as 12345678901234567000; send it as a string/,
  );
  assert.deepEqual(inexactNumberErrors("1e400").map((e) => e.field), ["body"]);
  assert.deepEqual(inexactNumberErrors('{"value": 1e400'), []);
  const long = inexactNumberErrors(`{"v": 1${"0".repeat(1000)}1}`);
  assert.ok(long[0].message.length < 200, long[0].message);
});

Deno.test("inexactNumberErrors() names the deep field of a body too deep for a reviver", () => {
  const text = `{"key": "k", "value": ${arrays(100_000)}, "n": 1e3}`;
  assert.deepEqual(inexactNumberErrors(text), [{
    field: "value",
    in: "body",
    message: `nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
  }]);
});

Deno.test("deepFields() names fields deeper than the limit; a non-object body is checked whole", () => {
  const at = (n: number) => JSON.parse(arrays(n));
  assert.deepEqual(deepFields({ a: at(MAX_JSON_DEPTH), b: 1 }), []);
  assert.deepEqual(deepFields({ a: at(MAX_JSON_DEPTH + 1), b: at(2) }).map((e) => e.field), [
    "a",
  ]);
  assert.deepEqual(deepFields(at(MAX_JSON_DEPTH)), []);
  assert.deepEqual(deepFields(at(MAX_JSON_DEPTH + 1)).map((e) => e.field), ["body"]);
  assert.deepEqual(deepFields("x"), []);
  assert.equal(nestedDeeperThan(at(200_000)), true);
});

Deno.test("duplicateKeys() names a member repeated in one object, by path", () => {
  const fields = (t: string) => duplicateKeys(t).map((e) => e.field);
  assert.deepEqual(fields('{"value":{"a":12,"a":1}}'), ["value.a"]);
  assert.deepEqual(fields('{"value":[{"x":1},{"x":2 , "x" :3}]}'), ["value.1.x"]);
  assert.deepEqual(fields('{"a":"\\"a\\":","a":1}'), ["a"]);
  assert.deepEqual(fields('{"value":{"a":{"b":1},"b":2},"a":[1,{"a":1}]}'), []);
  assert.deepEqual(fields('{"k":1,"k":2,"k":3}'), ["k", "k"]);
});
