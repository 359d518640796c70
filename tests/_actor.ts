/** Driving an actor without a Worker: the context its host would give it. */
import type { ActorContext } from "../actors/actor_host.ts";
import { Mailbox } from "../actors/mailbox.ts";
import type { ActorEvent, CallMap, MessageOf } from "../actors/protocol.ts";
import type { Settings } from "../lib/settings.ts";

/**
 * An ActorContext over a real mailbox (`exclusive` work queued per key, as the host does) whose
 * `after` records the messages the actor schedules for itself instead of sending them, and whose
 * events are collected; `abort()` is the host stopping the actor.
 */
export function actorTestContext<M extends CallMap>(settings: Settings) {
  const abort = new AbortController();
  const mailbox = new Mailbox();
  const scheduled: { ms: number; msg: MessageOf<M> }[] = [];
  const events: ActorEvent[] = [];
  const ctx: ActorContext<M> = {
    settings,
    options: {},
    signal: abort.signal,
    emit: (e) => events.push(e),
    after: (ms, msg) => scheduled.push({ ms, msg }),
    defer: (fn) => Promise.resolve().then(fn),
    exclusive: (key, fn) => mailbox.run(key, fn),
  };
  return { ctx, mailbox, scheduled, events, abort: () => abort.abort() };
}
