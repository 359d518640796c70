/// <reference lib="deno.worker" />
/**
 * RegistryActor worker: owns the durable registration records (SQLite or PostgreSQL) and the
 * ZooKeeper session whose ephemeral znodes are the live view (or nothing more when ZooKeeper
 * is not configured: the records are the registry). Balances `url` picks. The behaviour is
 * {@link RegistryActor}'s; this file only dispatches.
 */
import { serveActor } from "./actor_host.ts";
import { openRegistryAdapters } from "./registry_adapters.ts";
import { entityOf, RegistryActor } from "./registry_actor.ts";
import type { RegistryCalls } from "./registry_protocol.ts";

/** Set by `init`; no message is dispatched before it is. */
let actor: RegistryActor;

serveActor<RegistryCalls>({
  async init(ctx) {
    actor = new RegistryActor(ctx, await openRegistryAdapters(ctx));
    await actor.start();
  },
  entityOf,
  handle(msg) {
    switch (msg.type) {
      case "metrics":
        return actor.metrics();
      case "ping":
        return { actor: "registry", ok: true };
      case "status":
        return actor.status();
      case "probe":
        return actor.probe();
      case "register":
        return actor.register(msg.input);
      case "deregister":
        return actor.deregister({ service: msg.service, id: msg.id });
      case "heartbeat":
        return actor.heartbeat({ service: msg.service, id: msg.id });
      case "all":
        return actor.all();
      case "reannounce":
        return actor.reannounce();
      case "answer":
        return actor.answer(msg.service, msg.healthy_only);
      case "instances":
        return actor.instances(msg.service);
      case "pick":
        return actor.pick(msg.service, msg.strategy);
      case "health_result":
        return actor.healthResult(msg);
      case "sweep":
        return actor.sweep();
      case "sync":
        return actor.sync();
      case "load":
        return actor.load();
      default: {
        const never: never = msg;
        throw new Error(`RegistryActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    await actor?.close();
  },
});
