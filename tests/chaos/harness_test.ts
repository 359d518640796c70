/**
 * The chaos harness's parts: SSE frame parsing, the seeded random source, which faults may
 * overlap, the command line, and how a replica's unasked exit is told from a kill of ours (on
 * an embedded replica). The run itself needs the stack: `deno task chaos`.
 */
import assert from "node:assert/strict";
import { freePort, ReplicaProcess } from "./cluster.ts";
import { BACKEND_VARS, tempDir } from "../_helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
import { abortableSleep, parseFrame, Rng } from "./workload.ts";
import { conflicts } from "./nemesis.ts";
import { parseOptions } from "./run.ts";

Deno.test("parseFrame() reads id, event and data, joins data lines and skips comments", () => {
  assert.deepEqual(parseFrame('id: 42\nevent: updated\ndata: {"key":"k","version":3}'), {
    id: "42",
    event: "updated",
    data: '{"key":"k","version":3}',
  });
  assert.deepEqual(parseFrame(": heartbeat"), {});
  assert.deepEqual(parseFrame("retry: 1000\n: connected"), {});
  assert.deepEqual(parseFrame("data:a\ndata: b\nid:7"), { id: "7", data: "a\nb" });
});

Deno.test("Rng gives the same choices for the same seed and others for another", () => {
  const draw = (seed: number) => {
    const r = new Rng(seed);
    return Array.from({ length: 20 }, () => r.int(0, 1_000_000));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

Deno.test("Rng.int() stays within its bounds and reaches both", () => {
  const r = new Rng(1);
  const seen = new Set<number>();
  for (let i = 0; i < 2_000; i++) {
    const n = r.int(3, 6);
    assert.ok(n >= 3 && n <= 6, `${n} out of [3, 6]`);
    seen.add(n);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
});

Deno.test("Rng.weighted() never picks a key of weight 0", () => {
  const r = new Rng(3);
  const counts = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 3_000; i++) counts[r.weighted({ a: 1, b: 0, c: 3 })]++;
  assert.equal(counts.b, 0);
  assert.ok(counts.c > 2 * counts.a, JSON.stringify(counts));
});

Deno.test("Rng.shuffle() keeps every item", () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(new Rng(5).shuffle([...items]).sort((a, b) => a - b), items);
});

Deno.test("conflicts(): one target at a time, and never PostgreSQL with Unleash", () => {
  assert.equal(conflicts("replica-a", "replica-a"), true);
  assert.equal(conflicts("postgres", "unleash"), true);
  assert.equal(conflicts("unleash", "postgres"), true);
  assert.equal(conflicts("replica-a", "replica-b"), false);
  assert.equal(conflicts("postgres", "kafka"), false);
  assert.equal(conflicts("replica-b", "zookeeper"), false);
});

Deno.test("abortableSleep() resolves false at once when aborted, true after a full sleep", async () => {
  assert.equal(await abortableSleep(1, new AbortController().signal), true);
  const ctl = new AbortController();
  const t0 = performance.now();
  const slept = abortableSleep(10_000, ctl.signal);
  ctl.abort();
  assert.equal(await slept, false);
  assert.ok(performance.now() - t0 < 1_000);
});

Deno.test("parseOptions() defaults to 180 s, seed 1, no overlap, test-results/chaos", () => {
  assert.deepEqual(parseOptions([]), {
    durationS: 180,
    seed: 1,
    overlap: false,
    out: "test-results/chaos",
    check: undefined,
  });
  const o = parseOptions(["--duration", "60", "--seed", "9", "--overlap", "--out", "/tmp/x"]);
  assert.deepEqual([o.durationS, o.seed, o.overlap, o.out], [60, 9, true, "/tmp/x"]);
});

Deno.test("parseOptions() writes a checked history's report beside it unless --out says", () => {
  assert.equal(parseOptions(["--check", "runs/one/history.jsonl"]).out, "runs/one");
  assert.equal(parseOptions(["--check", "h.jsonl", "--out", "o"]).out, "o");
});

Deno.test("parseOptions() refuses a short or non-numeric duration, a bad seed, unknown flags", () => {
  assert.throws(() => parseOptions(["--duration", "5"]), /--duration/);
  assert.throws(() => parseOptions(["--duration", "abc"]), /--duration/);
  assert.throws(() => parseOptions(["--seed", "-1"]), /--seed/);
  assert.throws(() => parseOptions(["--seed", "1.5"]), /--seed/);
  assert.throws(() => parseOptions(["--bogus"]), /bogus/);
});

Deno.test("ReplicaProcess reports an exit it did not ask for, and not its own kill", async () => {
  const dir = tempDir("cs-chaos-exit-");
  const env: Record<string, string> = {
    DATA_DIR: dir,
    SERVICE_REGISTRY_ENABLED: "false",
    LOG_LEVEL: "WARNING",
  };
  for (const v of BACKEND_VARS) env[v] = ""; // embedded backends, whatever the stack is
  const r = new ReplicaProcess({ name: "a", port: freePort(), logFile: `${dir}/a.log`, env });
  const exits: Deno.CommandStatus[] = [];
  r.onUnaskedExit = (s) => exits.push(s);
  try {
    await r.start(60_000);
    Deno.kill(r.pid!, "SIGKILL"); // from outside the harness
    for (let i = 0; i < 100 && exits.length === 0; i++) await sleep(50);
    assert.equal(exits.length, 1);
    assert.equal(exits[0].signal, "SIGKILL");
    assert.equal(r.state, "exited");
    await r.start(60_000);
    assert.equal(r.state, "up");
    await r.kill();
    await sleep(200);
    assert.equal(exits.length, 1, "a kill of the harness's own is not reported");
    assert.equal(r.state, "killed");
  } finally {
    await r.stop();
  }
});
