import assert from "node:assert/strict";
import { Scheduler, type SchedulerOptions } from "../lib/health/scheduler.ts";
import { log } from "../lib/log.ts";
import { FakeClock, seeded, sequence, settle } from "./_clock.ts";

/**
 * A check that takes `checkMs` on `clock` and records, per key, when each check started, plus
 * the most checks in flight and any overlap of two checks of one key.
 */
function tracker(clock: FakeClock, checkMs: number) {
  const starts = new Map<string, number[]>();
  const running = new Set<string>();
  const t = { starts, inFlight: 0, maxInFlight: 0, overlaps: 0 };
  const check = async (key: string) => {
    if (running.has(key)) t.overlaps++;
    running.add(key);
    t.inFlight++;
    t.maxInFlight = Math.max(t.maxInFlight, t.inFlight);
    starts.set(key, [...(starts.get(key) ?? []), clock.now()]);
    // A 0 ms check sets no timer, so the clock's pending timers are the scheduler's own.
    if (checkMs > 0) await clock.sleep(checkMs);
    t.inFlight--;
    running.delete(key);
  };
  const count = (key: string) => starts.get(key)?.length ?? 0;
  return { t, check, count };
}

/** A scheduler on a new fake clock whose checks are {@link tracker}'s, taking `checkMs`. */
function tracked(
  checkMs: number,
  options: Omit<SchedulerOptions, "check" | "clock">,
) {
  const clock = new FakeClock();
  const tr = tracker(clock, checkMs);
  return { clock, s: new Scheduler({ ...options, check: tr.check, clock }), ...tr };
}

/** Stops `s` while `clock` moves `ms` on, so that checks sleeping on it can finish. */
async function stopWithin(s: Scheduler, clock: FakeClock, ms: number): Promise<void> {
  const stopped = s.stop();
  await clock.advance(ms);
  await stopped;
}

/** Differences between consecutive numbers. */
function gaps(xs: number[]): number[] {
  return xs.slice(1).map((x, i) => x - xs[i]);
}

Deno.test("Scheduler staggers first checks over [0, interval) with a single timer", async () => {
  const { clock, s, t } = tracked(0, {
    intervalMs: 1000,
    concurrency: 4,
    jitter: 0,
    random: sequence(0, 0.25, 0.5, 0.75),
  });
  for (const k of ["a", "b", "c", "d"]) s.add(k);
  assert.equal(clock.pending, 0, "nothing is timed before start()");
  s.start();
  assert.equal(clock.pending, 1);
  let maxPending = 0;
  await clock.advance(1999, () => maxPending = Math.max(maxPending, clock.pending));
  await s.stop();
  assert.deepEqual(Object.fromEntries(t.starts), {
    a: [0, 1000],
    b: [250, 1250],
    c: [500, 1500],
    d: [750, 1750],
  });
  assert.equal(maxPending, 1, "one timer for all keys");
});

Deno.test("Scheduler jitters each period within interval * (1 ± jitter)", async () => {
  // Exact: a stagger of 0, then periods drawn at the bottom, middle and upper part of the range.
  const { clock, s, t } = tracked(0, {
    intervalMs: 1000,
    concurrency: 1,
    jitter: 0.1,
    random: sequence(0, 0, 0.5, 0.75),
  });
  s.add("k");
  s.start();
  await clock.advance(3000);
  await s.stop();
  const got = gaps(t.starts.get("k")!);
  assert.equal(got.length, 3);
  for (const [i, want] of [900, 1000, 1050].entries()) {
    assert.ok(Math.abs(got[i] - want) < 1e-6, `period ${i} was ${got[i]} ms, not ${want}`);
  }

  // Seeded: 50 keys over 10 rounds stay inside the band and really spread across it.
  const many = tracked(0, { intervalMs: 1000, concurrency: 50, jitter: 0.1, random: seeded(7) });
  const s2 = many.s;
  for (let i = 0; i < 50; i++) s2.add(`k${i}`);
  s2.start();
  await many.clock.advance(11_000);
  await s2.stop();
  const all = [...many.t.starts.values()].flatMap(gaps);
  assert.ok(all.length >= 450, `${all.length} periods`);
  assert.ok(all.every((g) => g >= 900 - 1e-6 && g <= 1100 + 1e-6), `${Math.min(...all)}..`);
  assert.ok(Math.min(...all) < 920 && Math.max(...all) > 1080, "the jitter spans the band");
});

Deno.test("Scheduler counts the next check from the previous start, so check time adds no drift", async () => {
  const { clock, s, t } = tracked(30, {
    intervalMs: 100,
    concurrency: 1,
    jitter: 0,
    random: sequence(0),
  });
  s.add("k");
  s.start();
  await clock.advance(1000);
  await stopWithin(s, clock, 30);
  assert.deepEqual(t.starts.get("k"), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.equal(s.stats().maxLatenessMs, 0);
});

Deno.test("Scheduler reschedules a check that outlasts the interval one interval after its end", async () => {
  const { clock, s, t } = tracked(150, {
    intervalMs: 50,
    concurrency: 4,
    jitter: 0,
    random: sequence(0),
  });
  s.add("slow");
  s.start();
  await clock.advance(700);
  await stopWithin(s, clock, 150);
  assert.equal(t.overlaps, 0);
  // Ends at 150, 350, 550: each next start is one interval after, not bunched at once.
  assert.deepEqual(t.starts.get("slow"), [0, 200, 400, 600]);
});

Deno.test("Scheduler runs at most `concurrency` checks at once and queues the rest by due time", async () => {
  const { clock, s, t } = tracked(50, {
    intervalMs: 1000,
    concurrency: 1,
    jitter: 0,
    // Added out of due order: k3 (due 20), k1 (due 0), k2 (due 10).
    random: sequence(0.02, 0, 0.01),
  });
  for (const k of ["k3", "k1", "k2"]) s.add(k);
  s.start();
  await clock.advance(20);
  assert.deepEqual(s.stats(), { checks: 1, maxLatenessMs: 0, inFlight: 1, queued: 2 });
  await clock.advance(130);
  await s.stop();
  assert.deepEqual(Object.fromEntries(t.starts), { k1: [0], k2: [50], k3: [100] });
  assert.equal(s.stats().maxLatenessMs, 80, "k3 was due at 20 and started at 100");
  assert.equal(t.maxInFlight, 1);
});

Deno.test("Scheduler checks every key each interval with at most `concurrency` in flight", async () => {
  const { clock, s, t, count } = tracked(30, {
    intervalMs: 200,
    concurrency: 3,
    random: seeded(1),
  });
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  for (const k of keys) s.add(k);
  assert.equal(s.size, 20);
  s.start();
  await clock.advance(1100);
  await stopWithin(s, clock, 30);
  for (const k of keys) assert.ok(count(k) >= 3, `${k} checked ${count(k)} times`);
  assert.equal(t.maxInFlight, 3, "the slots were used, and no more");
  assert.equal(t.overlaps, 0);
  const st = s.stats();
  assert.equal(st.checks, keys.reduce((n, k) => n + count(k), 0));
  assert.deepEqual([st.inFlight, st.queued], [0, 0]);
  assert.ok(st.maxLatenessMs > 0, "20 keys of 30 ms every 200 ms fill 3 slots: checks queued");
});

Deno.test("Scheduler.remove() stops a key's checks and lets a running one finish", async () => {
  const { clock, s, t, count } = tracked(5, { intervalMs: 40, concurrency: 2, random: seeded(2) });
  s.add("a");
  s.add("b");
  s.start();
  await clock.advance(200);
  const frozen = count("a");
  assert.ok(frozen >= 4, `a checked ${frozen} times`);
  s.remove("a");
  assert.equal(s.has("a"), false);
  assert.equal(s.size, 1);
  const before = count("b");
  await clock.advance(200);
  assert.equal(count("a"), frozen);
  assert.ok(count("b") > before, "the other key kept being checked");

  // A check running when its key is removed finishes and is not rescheduled.
  const gate = Promise.withResolvers<void>();
  let gated = 0;
  const g = new Scheduler({
    intervalMs: 100,
    concurrency: 1,
    check: () => (gated++, gate.promise),
    clock,
    random: sequence(0),
  });
  g.add("k");
  g.start();
  await clock.advance(0);
  assert.equal(g.stats().inFlight, 1);
  g.remove("k");
  gate.resolve();
  await clock.advance(1000);
  assert.equal(gated, 1);
  assert.equal(g.stats().inFlight, 0);
  await g.stop();
  await stopWithin(s, clock, 5);
  assert.equal(t.overlaps, 0);
  assert.equal(clock.pending, 0);
});

Deno.test("Scheduler.runNow() on a running key waits for it instead of running twice", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const gate = Promise.withResolvers<void>();
  const s = new Scheduler({
    intervalMs: 60_000,
    concurrency: 2,
    check: async () => {
      calls++;
      await gate.promise;
    },
    clock,
  });
  s.add("k");
  const first = s.runNow("k");
  const second = s.runNow("k");
  let secondDone = false;
  second.then(() => secondDone = true);
  await settle();
  assert.equal(calls, 1);
  assert.equal(secondDone, false, "the second caller waits for the running check");
  assert.equal(s.stats().inFlight, 1);
  gate.resolve();
  await Promise.all([first, second]);
  assert.equal(calls, 1);

  // Once finished, a new manual trigger runs a fresh check.
  await s.runNow("k");
  assert.equal(calls, 2);
  await s.stop();
});

Deno.test("Scheduler.runNow() takes a key's slot: its schedule restarts from the manual check", async () => {
  const { clock, s, t } = tracked(150, {
    intervalMs: 100,
    concurrency: 2,
    jitter: 0,
    random: sequence(0.5),
  });
  s.add("k");
  s.start(); // first scheduled check due at 50
  const manual = s.runNow("k"); // runs 0..150
  await clock.advance(300);
  await manual;
  await stopWithin(s, clock, 150);
  assert.equal(t.overlaps, 0, "the check due at 50 did not run beside the manual one");
  // Due 100 after the manual start, passed by its end at 150: due 100 after that.
  assert.deepEqual(t.starts.get("k"), [0, 250]);
});

Deno.test("Scheduler.runNow() takes the next free slot ahead of queued scheduled checks", async () => {
  const clock = new FakeClock();
  const order: string[] = [];
  const gate = Promise.withResolvers<void>();
  const s = new Scheduler({
    intervalMs: 20,
    concurrency: 1,
    check: async (key) => {
      order.push(key);
      if (key === "busy") await gate.promise;
    },
    clock,
    random: seeded(3),
  });
  s.add("s1");
  s.add("s2");
  s.start();
  const busy = s.runNow("busy");
  await clock.advance(40); // s1 and s2 come due and queue behind the busy slot
  assert.deepEqual(s.stats(), { checks: 1, maxLatenessMs: 0, inFlight: 1, queued: 2 });
  const urgent = s.runNow("urgent");
  assert.equal(s.stats().queued, 3);
  gate.resolve();
  await Promise.all([busy, urgent]);
  await settle(); // then the queued scheduled ones
  assert.equal(s.stats().checks, 4);
  await s.stop();
  assert.deepEqual(order.slice(0, 2), ["busy", "urgent"]);
  assert.deepEqual(order.slice(2, 4).sort(), ["s1", "s2"]);
  assert.equal(s.has("urgent"), false, "a manual run does not add the key");
  assert.ok(s.stats().maxLatenessMs > 0, "the queued checks started after their due time");
});

Deno.test("Scheduler.stop() waits for running checks, leaves no timers and can start again", async () => {
  const clock = new FakeClock();
  let finished = 0;
  let started = 0;
  const s = new Scheduler({
    intervalMs: 30,
    concurrency: 8,
    check: async () => {
      started++;
      await clock.sleep(80);
      finished++;
    },
    clock,
    random: seeded(4),
  });
  for (let i = 0; i < 8; i++) s.add(`k${i}`);
  s.start();
  await clock.advance(30); // every first check starts within [0, 30)
  assert.equal(s.stats().inFlight, 8);
  let stopped = false;
  const stopping = s.stop().then(() => stopped = true);
  await settle();
  assert.equal(stopped, false, "stop() waits for the running checks");
  await clock.advance(80);
  await stopping;
  assert.equal(s.stats().inFlight, 0);
  assert.equal(finished, 8, "every started check finished before stop() resolved");
  assert.equal(clock.pending, 0, "no timer left behind");
  await clock.advance(1000);
  assert.equal(started, 8, "nothing ran after stop()");
  assert.equal(s.size, 8, "keys stay added for a later start()");

  s.start();
  await clock.advance(30);
  assert.equal(started, 16, "a later start() resumes every key with a fresh stagger");
  const again = s.stop();
  await clock.advance(80);
  await again;
  assert.equal(clock.pending, 0);
});

Deno.test("Scheduler keeps a check that throws from breaking the schedule", async () => {
  const clock = new FakeClock();
  let calls = 0;
  const s = new Scheduler({
    intervalMs: 20,
    concurrency: 1,
    jitter: 0,
    check: () => {
      calls++;
      return Promise.reject(new Error("boom"));
    },
    clock,
    random: sequence(0),
  });
  const lines: string[] = [];
  log.setSink((line) => lines.push(line));
  try {
    s.add("k");
    s.start();
    await clock.advance(150);
    await s.stop();
  } finally {
    log.setSink(null);
  }
  assert.equal(calls, 8, "checks at 0, 20, … 140");
  assert.ok(lines.some((l) => l.includes("boom")));
});

Deno.test("Scheduler checks 10,000 keys with a single timer", async () => {
  const clock = new FakeClock();
  const seen = new Set<string>();
  const s = new Scheduler({
    intervalMs: 300,
    concurrency: 64,
    check: (key) => {
      seen.add(key);
      return Promise.resolve();
    },
    clock,
    random: seeded(5),
  });
  for (let i = 0; i < 10_000; i++) s.add(`i${i}`);
  s.start();
  let maxPending = 0;
  await clock.advance(450, () => maxPending = Math.max(maxPending, clock.pending));
  await s.stop();
  assert.equal(seen.size, 10_000);
  assert.ok(s.stats().checks >= 10_000);
  assert.equal(maxPending, 1);
});

Deno.test("Scheduler on the real clock checks each key about once per interval", async () => {
  // The default clock and random, wired: a short real run (the schedule itself is tested above).
  const counts = new Map<string, number>();
  const s = new Scheduler({
    intervalMs: 50,
    concurrency: 2,
    check: (key) => {
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return Promise.resolve();
    },
  });
  for (const k of ["a", "b", "c"]) s.add(k);
  s.start();
  await new Promise((r) => setTimeout(r, 230));
  await s.stop();
  for (const k of ["a", "b", "c"]) {
    const n = counts.get(k) ?? 0;
    assert.ok(n >= 3 && n <= 6, `${k} checked ${n} times in 230 ms`);
  }
});

Deno.test("Scheduler rejects an unusable interval or concurrency", () => {
  const check = () => Promise.resolve();
  assert.throws(() => new Scheduler({ intervalMs: 0, concurrency: 1, check }), RangeError);
  assert.throws(() => new Scheduler({ intervalMs: 10, concurrency: 0, check }), RangeError);
});
