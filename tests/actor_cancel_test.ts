import assert from "node:assert/strict";
import { ActorClient } from "../actors/actor_client.ts";
import { CallCancelledError } from "../lib/errors.ts";
import { ActorTimeoutError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { actorCallDuration } from "../lib/metrics.ts";
import { loadSettings } from "../lib/settings.ts";
import type { CancelCalls } from "./fixtures/cancel_protocol.ts";
import { until } from "./_helpers.ts";

const settings = loadSettings({});
const logged: string[] = [];
log.setLevel("warn");
log.setSink((line) => logged.push(line));

let instances = 0;
/** A fresh actor under its own name, so its metric series start at zero. */
function cancelActor(timeoutMs = 5_000) {
  return new ActorClient<CancelCalls>({
    name: `cancel-${++instances}`,
    url: new URL("./fixtures/cancel_worker.ts", import.meta.url),
    settings,
    timeoutMs,
  });
}

const calls = (a: ActorClient<CancelCalls>, outcome: string) =>
  actorCallDuration.series([a.name, outcome]).n;

Deno.test("ActorClient.call() with an aborted signal rejects with CallCancelledError and posts nothing", async () => {
  await using a = cancelActor();
  await a.start();
  await assert.rejects(
    a.call({ type: "hold", ms: 10 }, { signal: AbortSignal.abort() }),
    CallCancelledError,
  );
  assert.deepEqual(await a.call({ type: "stats" }), { handled: 1, cancelled: 0, ran: 0 });
});

Deno.test("a call aborted in the turn that made it is never sent", async () => {
  await using a = cancelActor();
  await a.start();
  const ac = new AbortController();
  // Batched for the end of this turn, then dropped before the batch is posted.
  const held = a.call({ type: "hold", ms: 10 }, { signal: ac.signal });
  const kept = a.call({ type: "hold", ms: 10 });
  ac.abort();
  await assert.rejects(held, (e) => e instanceof CallCancelledError && e.status === 499);
  assert.equal(await kept, "done");
  assert.equal((await a.call({ type: "stats" })).handled, 2, "the kept call and stats only");
  assert.equal(a.queueDepth, 0);
});

Deno.test("a call aborted after posting rejects at once, discards its answer and cancels it in the worker", async () => {
  await using a = cancelActor();
  await a.start();
  const ac = new AbortController();
  const held = a.call({ type: "hold", ms: 60_000 }, { signal: ac.signal });
  // Answered only after the batch holding `hold` reached the worker.
  assert.equal((await a.call({ type: "stats" })).handled, 2);
  ac.abort();
  await assert.rejects(held, CallCancelledError);
  assert.equal(a.queueDepth, 0);
  const stats = await until(() => a.call({ type: "stats" }), (s) => s.cancelled === 1, {
    intervalMs: 20,
    what: "the worker to see the cancel",
  });
  assert.equal(stats.cancelled, 1, "the worker saw the cancel");
  // The worker answered the cancelled call anyway; nothing reached the client, and the
  // actor is healthy: not restarted, no error recorded, nothing logged as an error.
  assert.equal(await a.call({ type: "hold", ms: 1 }), "done");
  assert.equal(a.restarts, 0);
  assert.equal(calls(a, "cancelled"), 1);
  assert.equal(calls(a, "error"), 0);
  assert.deepEqual(logged.filter((l) => l.includes('"level":"error"')), []);
});

Deno.test("deferred work of calls cancelled behind a burst is skipped", async () => {
  await using a = cancelActor();
  await a.start();
  const ac = new AbortController();
  // 50 jobs of 20 ms: a second of work, deferred, and cancelled a round trip later.
  const burst = Array.from(
    { length: 50 },
    () => a.call({ type: "heavy", ms: 20 }, { signal: ac.signal }).catch((e) => e),
  );
  await a.call({ type: "ping" });
  ac.abort();
  for (const r of await Promise.all(burst)) assert.ok(r instanceof CallCancelledError);
  const { ran } = await a.call({ type: "stats" });
  assert.ok(ran < 25, `${ran} of 50 cancelled jobs ran`);
  // Ran or skipped, every job is settled: a new one runs.
  assert.equal(await a.call({ type: "heavy", ms: 1 }), ran + 1);
});

Deno.test("a call that timed out is cancelled in the worker", async () => {
  await using a = cancelActor(100);
  await a.start();
  await assert.rejects(a.call({ type: "hold", ms: 60_000 }), ActorTimeoutError);
  const stats = await until(() => a.call({ type: "stats" }), (s) => s.cancelled === 1, {
    intervalMs: 20,
    what: "the worker to see the cancel",
  });
  assert.equal(stats.cancelled, 1);
  assert.equal(calls(a, "timeout"), 1);
});

Deno.test("identical deferred jobs queued together run once and share the answer", async () => {
  await using a = cancelActor();
  await a.start();
  const got = await Promise.all(
    Array.from({ length: 10 }, () => a.call({ type: "shared", key: "k" })),
  );
  assert.deepEqual(got, Array(10).fill(1));
  // A job that already ran is not joined: the next call computes anew.
  assert.equal(await a.call({ type: "shared", key: "k" }), 2);
  assert.equal((await a.call({ type: "stats" })).ran, 2);
});

Deno.test("a shared deferred job still runs for the callers that stayed", async () => {
  await using a = cancelActor();
  await a.start();
  const gone = new AbortController();
  const left = a.call({ type: "shared", key: "k" }, { signal: gone.signal });
  const stayed = a.call({ type: "shared", key: "k" }, { signal: new AbortController().signal });
  gone.abort();
  await assert.rejects(left, CallCancelledError);
  assert.equal(await stayed, 1);
});
