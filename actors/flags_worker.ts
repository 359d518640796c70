/// <reference lib="deno.worker" />
/**
 * FlagActor: syncs flag definitions from Unleash (or the flags file) and evaluates them
 * locally.
 */
import { serveActor } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { FlagCalls } from "./flags_protocol.ts";
import { unleashProbe } from "../lib/backends/unleash.ts";
import { flagsFilePath, flagsFileProbe } from "../lib/backends/flags_file.ts";

let monitor: BackendMonitor;

serveActor<FlagCalls>({
  init(ctx) {
    const s = ctx.settings;
    monitor = new BackendMonitor([
      s.UNLEASH_URL ? unleashProbe(s.UNLEASH_URL) : flagsFileProbe(flagsFilePath(s)),
    ]);
    ctx.after(0, { type: "probe" });
  },
  handle(msg, ctx) {
    switch (msg.type) {
      case "ping":
        return { actor: "flags", ok: true };
      case "status":
        return monitor.check(ctx);
      case "probe":
        return monitor.tick(ctx);
      default: {
        const never: never = msg;
        throw new Error(`FlagActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  stop() {},
});
