/**
 * Starts the four actors and wires their events: configuration changes to the watchers'
 * hub, registry changes to the HealthActor's schedule, health outcomes to the registry.
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
 * Starts the four actors with their events wired.
 * @throws {BackendUnavailableError} when an actor does not start; the others are stopped.
 */
export async function startActors(settings: Settings, hub: WatchHub): Promise<Actors> {
  /**
   * Sends what one actor's event asks of another. An actor that is stopping refuses calls:
   * that is the service shutting down, not a failure, so nothing is sent to it, and a refusal
   * met on the way (it began stopping meanwhile) is logged at debug, not as a warning.
   */
  const forward = (to: { stopping: boolean }, what: string, send: () => Promise<unknown>) => {
    if (to.stopping) return;
    send().catch((err) => {
      const fields = { error: err instanceof Error ? err.message : String(err) };
      if (to.stopping) log.debug(what, fields);
      else log.warn(what, fields);
    });
  };
  const config = new ConfigClient({
    settings,
    onEvent: (e) => {
      if (e.type === "config_changes") hub.publish(e.changes);
    },
  });
  const registry = new RegistryClient({
    settings,
    onEvent: (e) => {
      const to = actors.health;
      if (e.type === "leadership") {
        forward(to, "health leadership", () => to.setActive({ active: e.leader }));
        return;
      }
      if (e.type !== "registry_changed") return;
      if (e.added.length) forward(to, "health track", () => to.track({ targets: e.added }));
      if (e.removed.length) forward(to, "untrack", () => to.untrack({ keys: e.removed }));
    },
  });
  const health = new HealthClient({
    settings,
    onEvent: (e) => {
      if (e.type !== "health_results") return;
      for (const r of e.results) {
        healthChecks.inc([r.healthy ? "healthy" : "unhealthy"]);
        const [service, id] = r.key.split("/");
        forward(actors.registry, "health result", () =>
          actors.registry.healthResult({
            service,
            id,
            healthy: r.healthy,
            checked_at: r.checked_at,
            reason: r.reason,
          }));
      }
    },
  });
  // The event handlers above run only after start(), when `actors` is set.
  const actors: Actors = { config, registry, health, flags: new FlagClient({ settings }) };
  try {
    // The HealthActor first: the registry announces restored instances as soon as it starts.
    await health.start();
    await Promise.all([config.start(), registry.start(), actors.flags.start()]);
    hub.lastSeq = await config.index();
  } catch (err) {
    // No worker outlives a failed start.
    await Promise.all(Object.values(actors).map((a) => a.stop(0)));
    throw err;
  }
  return actors;
}
