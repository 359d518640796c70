/// <reference lib="deno.worker" />
/**
 * HealthActor worker: checks registered instances and reports outcomes as events (the main
 * thread hands them to the RegistryActor). The behaviour is {@link HealthActor}'s; this file
 * only dispatches.
 */
import { serveActor } from "./actor_host.ts";
import { HealthActor } from "./health_actor.ts";
import type { HealthCalls } from "./health_protocol.ts";

/** Set by `init`; no message is dispatched before it is. */
let actor: HealthActor;

serveActor<HealthCalls>({
  init(ctx) {
    actor = new HealthActor(ctx);
  },
  handle(msg) {
    switch (msg.type) {
      case "metrics":
        return actor.metrics();
      case "ping":
        return { actor: "health", ok: true };
      case "status":
        return actor.status();
      case "probe":
        return actor.probe();
      case "track":
        return actor.track(msg.targets);
      case "untrack":
        return actor.untrack(msg.targets);
      case "set_active":
        return actor.setActive(msg.active);
      case "check_now":
        return actor.checkNow(msg.targets);
      default: {
        const never: never = msg;
        throw new Error(`HealthActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    await actor?.close();
  },
});
