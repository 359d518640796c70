/**
 * wireHealth(): the registry and the HealthActor kept in step, also across a HealthActor
 * crash. The registry is a real RegistryActor (embedded, SQLite); the HealthActor side is a
 * recording stand-in, because what is tested is what reaches it.
 */
import assert from "node:assert/strict";
import { ActorClient } from "../actors/actor_client.ts";
import { wireHealth } from "../actors/mod.ts";
import { RegistryClient } from "../actors/registry_client.ts";
import type { HealthClient } from "../actors/health_client.ts";
import type { HealthEvent, HealthTarget } from "../actors/health_protocol.ts";
import type { EchoCalls } from "./fixtures/echo_protocol.ts";
import { embeddedSettings, until } from "./_helpers.ts";

/** What wireHealth() uses of a HealthClient, recording what it is asked. */
class RecordingHealth {
  stopping = false;
  tracked: HealthTarget[] = [];
  active: boolean[] = [];
  #restarted = new Set<() => void>();
  listen(_fn: (e: HealthEvent) => void) {
    return () => {};
  }
  onRestarted(fn: () => void) {
    this.#restarted.add(fn);
    return () => this.#restarted.delete(fn);
  }
  /** As the client does when a worker restarted after a crash is ready. */
  restart() {
    this.tracked = [];
    this.active = [];
    for (const fn of this.#restarted) fn();
  }
  track(r: { targets: HealthTarget[] }) {
    this.tracked.push(...r.targets);
    return Promise.resolve();
  }
  untrack() {
    return Promise.resolve();
  }
  setActive(r: { active: boolean }) {
    this.active.push(r.active);
    return Promise.resolve();
  }
}

Deno.test("wireHealth() gives a restarted HealthActor every registration and the leadership again", async () => {
  const settings = embeddedSettings();
  const health = new RecordingHealth();
  await using registry = new RegistryClient({ settings });
  wireHealth(registry, health as unknown as HealthClient);
  await registry.start();
  await registry.register({
    input: { service_name: "billing", service_url: "http://127.0.0.1:9/", metadata: {} },
  });
  await until(() => health.tracked.length, (n) => n === 1, { what: "the first track" });
  assert.deepEqual(health.active, [true], "the embedded registry leads");

  health.restart();
  await until(() => health.tracked.length, (n) => n === 1, { what: "the re-announced track" });
  assert.deepEqual(
    health.tracked.map((t) => [t.service, t.health_check_url]),
    [["billing", "http://127.0.0.1:9/health"]],
  );
  await until(() => health.active.length, (n) => n === 1, { what: "the leadership again" });
  assert.deepEqual(health.active, [true]);
});

Deno.test("ActorClient.onRestarted() is called once the worker restarted after a crash is ready", async () => {
  await using a = new ActorClient<EchoCalls>({
    name: "echo",
    url: new URL("./fixtures/echo_worker.ts", import.meta.url),
    settings: embeddedSettings(),
  });
  let restarted = 0;
  a.onRestarted(() => restarted++);
  await a.start();
  assert.equal(restarted, 0, "not for the first start");
  await assert.rejects(a.call({ type: "crash" }));
  assert.equal(await a.call({ type: "echo", value: 1 }), 1);
  assert.equal(restarted, 1);
});
