import assert from "node:assert/strict";
import { ActorClient } from "../actors/actor_client.ts";
import { ConfigClient } from "../actors/config_client.ts";
import { FlagClient } from "../actors/flags_client.ts";
import { HealthClient } from "../actors/health_client.ts";
import { RegistryClient } from "../actors/registry_client.ts";
import { ActorTimeoutError, BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { loadSettings } from "../lib/settings.ts";
import type { EchoCalls } from "./fixtures/echo_protocol.ts";
import type { SlowLoadCalls, SlowLoadOptions } from "./fixtures/slow_load_protocol.ts";

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

/** The slow-loading fixture (its module takes 1.5 s to load) under `fixture`'s module. */
function slowLoadActor(fixture: string, options: SlowLoadOptions = {}) {
  return new ActorClient<SlowLoadCalls>({
    name: "slow-load",
    url: new URL(`./fixtures/${fixture}`, import.meta.url),
    settings,
    options: { ...options },
  });
}

Deno.test("ActorClient.start() counts its timeout from the module loaded, not from the spawn", async () => {
  // Loading stands for what deno test does before a worker's first line: type-check its
  // module graph, which on a cold DENO_DIR and a busy machine took longer than 30 s.
  await using a = slowLoadActor("slow_load_worker.ts");
  const t0 = Date.now();
  await a.start(500);
  assert.ok(Date.now() - t0 >= 1_400, "start() waited for the module to load");
  assert.deepEqual(await a.call({ type: "ping" }), { actor: "slow-load", ok: true });
});

Deno.test("ActorClient.start() still bounds the actor's init once its module has loaded", async () => {
  const a = slowLoadActor("slow_load_worker.ts", { initMs: -1 });
  const t0 = Date.now();
  await assert.rejects(a.start(300), (e) => {
    assert.ok(e instanceof BackendUnavailableError);
    assert.match(e.message, /^Actor slow-load did not start: init did not finish within 300 ms/);
    return true;
  });
  assert.ok(Date.now() - t0 >= 1_700, "the 300 ms ran after the 1.5 s of loading");
  assert.ok(a.stopping, "a client whose start failed is stopped");
  await assert.rejects(a.call({ type: "ping" }), BackendUnavailableError);
});

Deno.test("ActorClient.start() fails at once, naming the error, when the module does not load", async () => {
  const a = slowLoadActor("broken_worker.ts");
  const t0 = Date.now();
  await assert.rejects(a.start(20_000), (e) => {
    assert.ok(e instanceof BackendUnavailableError);
    assert.match(e.message, /did not start: its module did not load: .*this module cannot load/);
    return true;
  });
  assert.ok(Date.now() - t0 < 10_000, "not after the start timeout");
  assert.equal(a.restarts, 0, "no restart loop");
});

Deno.test("each worker is told only the credentials it uses (least privilege at init)", () => {
  const settings = loadSettings({
    API_TOKENS: "ops:ops-token-0123456789ab:admin",
    CONFIG_ENCRYPTION_KEY: btoa("k".repeat(32)),
    REDIS_PASSWORD: "redis-secret",
    DATABASE_URL: "postgresql://u:db-secret@127.0.0.1:1/x",
    UNLEASH_API_TOKEN: "unleash-admin-secret",
    UNLEASH_CLIENT_TOKENS: "development=client-secret",
  });
  const given = (c: { initMessage(): { settings: Record<string, unknown> } }) => {
    const posted = JSON.stringify(c.initMessage().settings);
    return [
      "ops-token",
      btoa("k".repeat(32)),
      "redis-secret",
      "db-secret",
      "unleash-admin-secret",
      "client-secret",
    ]
      .filter((secret) => posted.includes(secret));
  };
  assert.deepEqual(given(new ConfigClient({ settings })), [
    btoa("k".repeat(32)),
    "redis-secret",
    "db-secret",
  ]);
  assert.deepEqual(given(new RegistryClient({ settings })), ["db-secret"]);
  assert.deepEqual(given(new HealthClient({ settings })), []);
  assert.deepEqual(given(new FlagClient({ settings })), [
    "redis-secret",
    "db-secret",
    "unleash-admin-secret",
    "client-secret",
  ]);
});
