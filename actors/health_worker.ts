/// <reference lib="deno.worker" />
/** HealthActor: schedules the probes of registered instances and reports to the registry. */
import { serveActor } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { HealthCalls } from "./health_protocol.ts";

const monitor = new BackendMonitor([]);

serveActor<HealthCalls>({
  init() {},
  handle(msg, ctx) {
    switch (msg.type) {
      case "ping":
        return { actor: "health", ok: true };
      case "status":
        return monitor.check(ctx);
      case "probe":
        return monitor.last;
      default: {
        const never: never = msg;
        throw new Error(`HealthActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  stop() {},
});
