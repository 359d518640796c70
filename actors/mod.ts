/**
 * Starts the four actors and wires their events: configuration changes to the watchers'
 * hub, and health checking between the registry and the HealthActor ({@link wireHealth}).
 * Used by main.ts and by the tests, so both run the same wiring.
 */
import { ConfigClient } from "./config_client.ts";
import { FlagClient } from "./flags_client.ts";
import { healthChecks } from "../lib/metrics.ts";
import { HealthClient } from "./health_client.ts";
import { RegistryClient } from "./registry_client.ts";
import type { Settings } from "../lib/settings.ts";
import type { WatchHub } from "../lib/config/watch_hub.ts";
import { log } from "../lib/log.ts";

export type Actors = {
  config: ConfigClient;
  registry: RegistryClient;
  health: HealthClient;
  flags: FlagClient;
};

/**
 * Sends what one actor's event asks of another. An actor that is stopping refuses calls:
 * that is the service shutting down, not a failure, so nothing is sent to it, and a refusal
 * met on the way (it began stopping meanwhile) is logged at debug, not as a warning.
 */
function forward(to: { stopping: boolean }, what: string, send: () => Promise<unknown>): void {
  if (to.stopping) return;
  send().catch((err) => {
    const fields = { error: err instanceof Error ? err.message : String(err) };
    if (to.stopping) log.debug(what, fields);
    else log.warn(what, fields);
  });
}

/**
 * Wires health checking between the two actors: the registry's registrations and removals
 * become the HealthActor's targets, the registry's leadership turns the HealthActor's schedule
 * on and off, and each health outcome goes back to the registry (and to the
 * `health_checks_total` metric).
 *
 * A HealthActor restarted after a crash has no targets: the registry announces every
 * registration and its leadership again.
 *
 * Call before starting the registry: it announces its restored instances and its leadership
 * while it starts, and an event not yet wired is lost. Calls to an actor that is not ready yet
 * wait for it, bounded by the call timeout, so start the HealthActor no later than the
 * registry (the registry's start, which opens its store and live view, takes longer anyway).
 * @returns a function that unwires both directions.
 */
export function wireHealth(registry: RegistryClient, health: HealthClient): () => void {
  const offRegistry = registry.listen((e) => {
    switch (e.type) {
      case "leadership":
        forward(health, "health leadership", () => health.setActive({ active: e.leader }));
        return;
      case "registry_changed":
        if (e.added.length) {
          forward(health, "health track", () => health.track({ targets: e.added }));
        }
        if (e.removed.length) {
          forward(health, "health untrack", () => health.untrack({ targets: e.removed }));
        }
        return;
    }
  });
  const offHealth = health.listen((e) => {
    if (e.type !== "health_results") return;
    for (const r of e.results) {
      healthChecks.inc([r.healthy ? "healthy" : "unhealthy"]);
      forward(registry, "health result", () => registry.healthResult(r));
    }
  });
  const offRestart = health.onRestarted(() =>
    forward(registry, "health re-announce", () => registry.reannounce())
  );
  return () => {
    offRegistry();
    offHealth();
    offRestart();
  };
}

/**
 * Starts the four actors with their events wired.
 * @throws {BackendUnavailableError} when an actor does not start; the others are stopped.
 */
export async function startActors(settings: Settings, hub: WatchHub): Promise<Actors> {
  const config = new ConfigClient({
    settings,
    onEvent: (e) => {
      if (e.type === "config_changes") hub.publish(e.changes);
    },
  });
  const registry = new RegistryClient({ settings });
  const health = new HealthClient({ settings });
  wireHealth(registry, health);
  const actors: Actors = { config, registry, health, flags: new FlagClient({ settings }) };
  try {
    // As wireHealth asks: the HealthActor is ready before the registry announces anything.
    await health.start();
    await Promise.all([config.start(), registry.start(), actors.flags.start()]);
  } catch (err) {
    // No worker outlives a failed start.
    await Promise.all(Object.values(actors).map((a) => a.stop(0)));
    throw err;
  }
  return actors;
}
