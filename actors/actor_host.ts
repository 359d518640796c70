/**
 * The worker side of an actor: receives batches of calls, dispatches each to the actor's
 * `handle`, and sends replies back batched per turn. A handler that throws produces an error
 * reply, never a dead actor. Timers are messages the actor sends itself (`ctx.after`), so
 * stopping cancels them all.
 */
import { serializeError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { Settings } from "../lib/settings.ts";
import type { ActorEvent, CallMap, FromWorker, MessageOf, Reply, ToWorker } from "./protocol.ts";

/** What an actor can do besides answering calls. */
export interface ActorContext<M extends CallMap> {
  readonly settings: Settings;
  readonly options: Record<string, unknown>;
  /** Aborted when the actor is stopping; pass it to long-running I/O. */
  readonly signal: AbortSignal;
  /** Sends an unsolicited event to the main thread. */
  emit(event: ActorEvent): void;
  /** Delivers `msg` to this actor's own `handle` after `ms`; cancelled on stop. */
  after(ms: number, msg: MessageOf<M>): void;
}

/** An actor's behaviour. `handle` may answer synchronously (the cached-read fast path). */
export interface ActorDefinition<M extends CallMap> {
  init(ctx: ActorContext<M>): void | Promise<void>;
  handle(msg: MessageOf<M>, ctx: ActorContext<M>): unknown;
  /** Closes backend sessions; called once on graceful stop. */
  stop(ctx: ActorContext<M>): void | Promise<void>;
}

/** Runs `def` as this worker's actor. Call once at the top level of a worker module. */
export function serveActor<M extends CallMap>(def: ActorDefinition<M>): void {
  const scope = self as unknown as {
    postMessage(m: FromWorker): void;
    onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  };
  const abort = new AbortController();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let replies: Reply[] = [];
  let flushScheduled = false;
  let ctx: ActorContext<M> | null = null;

  const flush = () => {
    flushScheduled = false;
    if (replies.length === 0) return;
    const batch = replies;
    replies = [];
    scope.postMessage({ kind: "replies", replies: batch });
  };
  const reply = (r: Reply) => {
    replies.push(r);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  };

  const dispatch = (id: number, msg: MessageOf<M>, c: ActorContext<M>) => {
    let out: unknown;
    try {
      out = def.handle(msg, c);
    } catch (err) {
      reply({ id, ok: false, error: serializeError(err) });
      return;
    }
    if (out instanceof Promise) {
      out.then(
        (value) => reply({ id, ok: true, value }),
        (err) => reply({ id, ok: false, error: serializeError(err) }),
      );
    } else {
      reply({ id, ok: true, value: out });
    }
  };

  scope.onmessage = async (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.kind) {
      case "calls": {
        if (!ctx) return;
        for (const call of m.calls) dispatch(call.id, call.msg as MessageOf<M>, ctx);
        return;
      }
      case "init": {
        log.setLevel(m.settings.LOG_LEVEL);
        const c: ActorContext<M> = {
          settings: m.settings,
          options: m.options,
          signal: abort.signal,
          emit: (event) => scope.postMessage({ kind: "event", event }),
          after: (ms, msg) => {
            if (abort.signal.aborted) return;
            const t = setTimeout(() => {
              timers.delete(t);
              if (abort.signal.aborted) return;
              try {
                const r = def.handle(msg, c);
                if (r instanceof Promise) {
                  r.catch((err) =>
                    log.error("actor self-message failed", {
                      actor: m.actor,
                      type: msg.type,
                      error: String(err),
                    })
                  );
                }
              } catch (err) {
                log.error("actor self-message failed", {
                  actor: m.actor,
                  type: msg.type,
                  error: String(err),
                });
              }
            }, ms);
            timers.add(t);
          },
        };
        try {
          await def.init(c);
          ctx = c;
          scope.postMessage({ kind: "ready" });
        } catch (err) {
          scope.postMessage({ kind: "init_failed", error: serializeError(err) });
        }
        return;
      }
      case "stop": {
        abort.abort();
        for (const t of timers) clearTimeout(t);
        timers.clear();
        try {
          if (ctx) await def.stop(ctx);
        } catch (err) {
          log.warn("actor stop failed", { error: String(err) });
        }
        flush();
        scope.postMessage({ kind: "stopped" });
        return;
      }
      default: {
        const never: never = m;
        log.warn("worker got an unknown message", { m: never });
      }
    }
  };
}
