/// <reference lib="deno.worker" />
/**
 * RegistryActor: owns the ZooKeeper sessions whose ephemeral znodes are the live view of
 * registered instances (or the in-process registry when ZooKeeper is not configured).
 */
import { serveActor } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { RegistryCalls } from "./registry_protocol.ts";
import type { ZkSession } from "../lib/backends/zookeeper.ts";
import { log } from "../lib/log.ts";

let monitor: BackendMonitor;
let session: ZkSession | null = null;
let reconnectDelay = 200;

let zk: typeof import("../lib/backends/zookeeper.ts") | null = null;

serveActor<RegistryCalls>({
  async init(ctx) {
    const s = ctx.settings;
    if (s.ZOOKEEPER_HOSTS) {
      // The driver loads only when ZooKeeper is configured.
      zk = await import("../lib/backends/zookeeper.ts");
      monitor = new BackendMonitor([zk.zookeeperProbe(() => session)]);
      ctx.after(0, { type: "connect" });
    } else {
      monitor = new BackendMonitor([], [{ name: "registry", kind: "embedded", status: "up" }]);
    }
    ctx.after(0, { type: "probe" });
  },
  async handle(msg, ctx) {
    switch (msg.type) {
      case "ping":
        return { actor: "registry", ok: true };
      case "status":
        return await monitor.check(ctx);
      case "probe":
        return await monitor.tick(ctx);
      case "connect": {
        const s = ctx.settings;
        session?.close();
        const next = new zk!.ZkSession(s.ZOOKEEPER_HOSTS!, {
          sessionTimeoutMs: s.ZOOKEEPER_SESSION_TIMEOUT * 1000,
          connectTimeoutMs: s.ZOOKEEPER_CONNECTION_TIMEOUT * 1000,
        });
        session = next;
        // An expired session is dead for good: open a new one (Curator's pattern).
        next.on("expired", () => {
          if (session !== next) return;
          log.warn("zookeeper session expired; reconnecting");
          ctx.after(0, { type: "connect" });
        });
        try {
          await next.connect();
          reconnectDelay = 200;
          await next.mkdirp(s.ZOOKEEPER_BASE_PATH);
          log.info("zookeeper session open", { session: next.sessionId });
          await monitor.check(ctx);
        } catch (err) {
          if (session !== next || ctx.signal.aborted) return;
          log.warn("zookeeper connect failed; retrying", {
            error: String(err),
            retry_in_ms: reconnectDelay,
          });
          next.close();
          ctx.after(reconnectDelay, { type: "connect" });
          reconnectDelay = Math.min(reconnectDelay * 2, 5_000);
        }
        return;
      }
      default: {
        const never: never = msg;
        throw new Error(`RegistryActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  stop() {
    // worker.terminate() would not end the ZooKeeper session: close it explicitly.
    session?.close();
    session = null;
  },
});
