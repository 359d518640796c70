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

export async function startActors(settings: Settings, hub: WatchHub): Promise<Actors> {
  const warn = (what: string) => (err: unknown) =>
    log.warn(what, { error: err instanceof Error ? err.message : String(err) });
  const config = new ConfigClient({
    settings,
    onEvent: (e) => {
      if (e.type === "config_changes") hub.publish(e.changes);
    },
  });
  const registry = new RegistryClient({
    settings,
    onEvent: (e) => {
      if (e.type === "leadership") {
        actors.health.setActive({ active: e.leader }).catch(warn("health leadership"));
        return;
      }
      if (e.type !== "registry_changed") return;
      if (e.added.length) actors.health.track({ targets: e.added }).catch(warn("health track"));
      if (e.removed.length) actors.health.untrack({ keys: e.removed }).catch(warn("untrack"));
    },
  });
  const health = new HealthClient({
    settings,
    onEvent: (e) => {
      if (e.type !== "health_results") return;
      for (const r of e.results) {
        healthChecks.inc([r.healthy ? "healthy" : "unhealthy"]);
        const [service, id] = r.key.split("/");
        actors.registry.healthResult({
          service,
          id,
          healthy: r.healthy,
          checked_at: r.checked_at,
          reason: r.reason,
        }).catch(warn("health result"));
      }
    },
  });
  // The event handlers above run only after start(), when `actors` is set.
  const actors: Actors = { config, registry, health, flags: new FlagClient({ settings }) };
  // The HealthActor first: the registry announces restored instances as soon as it starts.
  await health.start();
  await Promise.all([config.start(), registry.start(), actors.flags.start()]);
  hub.lastSeq = await config.index();
  return actors;
}
