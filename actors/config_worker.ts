/// <reference lib="deno.worker" />
/**
 * The ConfigActor's worker: builds a {@link ConfigActor} over the backends the settings name
 * and dispatches each message to it. The only place configuration messages are routed.
 */
import { type ActorDefinition, type CallScope, serveActor } from "./actor_host.ts";
import type { ActorContext } from "./actor_host.ts";
import { ConfigActor, configEntityOf } from "./config_actor.ts";
import { openConfigBackends } from "./config_backends.ts";
import type { ConfigCalls } from "./config_protocol.ts";
import type { MessageOf } from "./protocol.ts";

type Ctx = ActorContext<ConfigCalls>;

/** Sends `msg` to the actor's method for it. */
function dispatch(a: ConfigActor, msg: MessageOf<ConfigCalls>, ctx: Ctx, call: CallScope) {
  switch (msg.type) {
    case "metrics":
      return a.metrics();
    case "ping":
      return { actor: "config", ok: true };
    case "status":
      return a.status();
    case "probe":
      return a.probe();
    // A cached answer is given only while the tail is current (ConfigActor.fresh).
    case "get": {
      const f = a.fresh();
      return f ? f.then(() => a.reads.get(msg.id)) : a.reads.get(msg.id);
    }
    case "reveal": {
      const f = a.fresh();
      return f ? f.then(() => a.reads.reveal(msg.id)) : a.reads.reveal(msg.id);
    }
    // Reads whose cost grows with their answer run deferred (skipped when their client hangs
    // up first), and identical ones queued together are computed once.
    case "bulk":
      return ctx.defer(async () => {
        await a.fresh();
        const body = await a.reads.bulk(msg.environment, msg.service, msg.keys);
        return { body, stale: a.stale };
      }, {
        signal: call.signal,
        key: JSON.stringify(["bulk", msg.environment, msg.service, msg.keys]),
      });
    case "list":
      return ctx.defer(() => a.list(msg), {
        signal: call.signal,
        key: JSON.stringify([
          "list",
          msg.environment ?? null,
          msg.service ?? null,
          msg.keys ?? null,
          msg.prefix ?? null,
          msg.limit,
          msg.offset,
        ]),
      });
    case "create":
      return a.writes.create(msg);
    case "update":
      return a.writes.update(msg);
    case "delete":
      return a.writes.delete(msg);
    case "rollback":
      return a.writes.rollback(msg);
    case "history":
      return ctx.defer(() => a.history(msg.id, msg.limit, msg.offset), {
        signal: call.signal,
        key: JSON.stringify([
          "history",
          msg.id.environment,
          msg.id.service,
          msg.id.key,
          msg.limit,
          msg.offset,
        ]),
      });
    case "changes":
      return a.changes(
        msg.after,
        { environment: msg.environment, service: msg.service },
        msg.limit,
      );
    case "index":
      return a.index;
    case "outbox":
      return a.outbox();
    case "tail":
      return a.tail();
    case "tail_tick":
      return a.tailTick();
    case "relay":
      return a.relay();
    case "relay_tick":
      return a.relayTick();
    case "open":
      return a.open();
    case "prune":
      return a.prune();
    default: {
      const never: never = msg;
      throw new Error(`ConfigActor: unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** The actor definition; the actor itself exists from `init` on. */
function configWorker(): ActorDefinition<ConfigCalls> {
  let actor: ConfigActor;
  return {
    async init(ctx) {
      actor = new ConfigActor(ctx, await openConfigBackends(ctx.settings));
      await actor.start();
    },
    deferConcurrency(settings) {
      // Deferred reads of PostgreSQL await the pool: as many at once as it has connections.
      return settings.DATABASE_URL ? settings.DATABASE_POOL_SIZE : 1;
    },
    entityOf: configEntityOf,
    handle: (msg, ctx, call) => dispatch(actor, msg, ctx, call),
    stop: () => actor.stop(),
  };
}

serveActor<ConfigCalls>(configWorker());
