/// <reference lib="deno.worker" />
/**
 * The FlagActor's worker entry: opens the backends the settings name and dispatches each
 * message to the {@link FlagActor} (actors/flags_actor.ts). A sync of an environment runs in
 * that environment's mailbox queue, after any sync of it under way.
 */
import { serveActor } from "./actor_host.ts";
import type { FlagCalls } from "./flags_protocol.ts";
import { FlagActor, flagsEntity } from "./flags_actor.ts";
import { openFlagBackends } from "./flags_backends.ts";

/** Set once in `init`; the host delivers no call before `init` has resolved. */
let actor: FlagActor;

serveActor<FlagCalls>({
  async init(ctx) {
    actor = new FlagActor(ctx.settings, await openFlagBackends(ctx.settings));
    await actor.start(ctx);
  },
  entityOf(msg) {
    return msg.type === "sync" ? flagsEntity(msg.env) : undefined;
  },
  handle(msg, ctx) {
    switch (msg.type) {
      case "metrics":
        return actor.metrics();
      case "ping":
        return { actor: "flags", ok: true };
      case "status":
        return actor.status(ctx);
      case "probe":
        return actor.probe(ctx);
      case "clientFeatures":
        return actor.clientFeatures(msg.env, msg.inm);
      case "clientUsage":
        return actor.clientUsage(msg.env, msg.instance, msg.toggles);
      case "usage":
        return actor.usage(msg.counts);
      case "sync":
        return actor.sync(msg.env, ctx);
      case "poll":
        return actor.poll(ctx);
      case "relay":
        return actor.relay(ctx);
      case "report":
        return actor.report(ctx);
      default: {
        const never: never = msg;
        throw new Error(`FlagActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop(ctx) {
    await actor?.stop(ctx);
  },
});
