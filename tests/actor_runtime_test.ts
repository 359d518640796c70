import assert from "node:assert/strict";
import { ActorClient } from "../actors/actor_client.ts";
import { ActorTimeoutError, BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { loadSettings } from "../lib/settings.ts";
import type { EchoCalls } from "./fixtures/echo_protocol.ts";

const settings = loadSettings({});
log.setLevel("error");
log.setSink(() => {});

function echoActor(timeoutMs = 2_000) {
  return new ActorClient<EchoCalls>({
    name: "echo",
    url: new URL("./fixtures/echo_worker.ts", import.meta.url),
    settings,
    timeoutMs,
  });
}

Deno.test("ActorClient.call() resolves with the actor's reply", async () => {
  await using a = echoActor();
  await a.start();
  assert.deepEqual(await a.call({ type: "echo", value: { x: [1, "two"] } }), { x: [1, "two"] });
});

Deno.test("ActorClient batches calls of one turn into one postMessage and keeps ids apart", async () => {
  await using a = echoActor();
  await a.start();
  const values = Array.from({ length: 500 }, (_, i) => i);
  const got = await Promise.all(values.map((v) => a.call({ type: "echo", value: v })));
  assert.deepEqual(got, values);
});

Deno.test("ActorClient.call() rethrows the actor's domain error with its class", async () => {
  await using a = echoActor();
  await a.start();
  await assert.rejects(a.call({ type: "fail", message: "no such key" }), (e) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.message, "no such key");
    return true;
  });
});

Deno.test("ActorClient.call() rejects with ActorTimeoutError after its timeout", async () => {
  await using a = echoActor(100);
  await a.start();
  const t0 = Date.now();
  await assert.rejects(a.call({ type: "sleep", ms: 1_000 }), ActorTimeoutError);
  assert.ok(Date.now() - t0 < 900, "the timeout fired well before the actor answered");
});

Deno.test("a crashed actor fails its in-flight calls with 503 and the next call succeeds", async () => {
  await using a = echoActor();
  await a.start();
  const inflight = a.call({ type: "sleep", ms: 5_000 });
  const crash = a.call({ type: "crash" });
  await assert.rejects(inflight, BackendUnavailableError);
  await assert.rejects(crash, (e) => e instanceof BackendUnavailableError && e.status === 503);
  // The call made while the worker restarts waits for the new one.
  assert.equal(await a.call({ type: "echo", value: "after" }), "after");
  assert.equal(a.restarts, 1);
  assert.equal(await a.call({ type: "count" }), 2, "the new worker is a fresh incarnation");
});

Deno.test("ActorClient.stop() rejects later calls with BackendUnavailableError", async () => {
  const a = echoActor();
  await a.start();
  await a.stop();
  await assert.rejects(a.call({ type: "echo", value: 1 }), BackendUnavailableError);
});

Deno.test("ActorClient.ping() shares round trips between concurrent callers, each joining a new one", async () => {
  await using a = echoActor();
  await a.start();
  const before = await a.call({ type: "count" });
  await Promise.all(Array.from({ length: 200 }, () => a.ping()));
  const after = await a.call({ type: "count" });
  // One round trip already under way plus at most one after it, not one per caller.
  assert.ok(after - before - 1 <= 2, `${after - before - 1} pings for 200 callers`);
  // A ping made after a round trip completed starts a new one.
  await a.ping();
  assert.equal(await a.call({ type: "count" }), after + 2);
});
