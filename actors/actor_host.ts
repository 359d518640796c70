/**
 * The worker side of an actor: receives batches of calls, dispatches each to the actor's
 * `handle`, and sends replies back batched per turn. A handler that throws produces an error
 * reply, never a dead actor. Timers are messages the actor sends itself (`ctx.after`), so
 * stopping cancels them all.
 *
 * The mailbox: a message that changes an entity (an instance, a config key, an environment's
 * flags) names it through {@link ActorDefinition.entityOf}; messages naming the same entity run
 * one at a time, in arrival order, each after the previous one's promise settled, so their
 * handlers never interleave across `await`s. Messages naming none (reads) run at once. Work
 * the actor starts itself joins the same queues through `ctx.exclusive`.
 *
 * Expensive work goes through `ctx.defer`: it runs in a later macrotask, after the messages
 * already sent to the worker have been received, so a `cancel` that arrives behind a burst of
 * calls is seen before the work it cancels starts. A cancelled call gets no reply: its caller
 * has forgotten it.
 */
import { setImmediate } from "node:timers";
import { BackendUnavailableError, serializeError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { Mailbox } from "./mailbox.ts";
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
  /**
   * Runs `fn` later, in order of deferral: never in the turn that received the call, and at
   * most {@link DEFER_SLICE_MS} ms of jobs per macrotask, so the messages queued meanwhile
   * (cancellations above all) are handled between jobs. At most
   * {@link ActorDefinition.deferConcurrency} jobs whose promise is pending run at once, the
   * rest wait in the queue, where cancelling them is free.
   * @returns `fn`'s result.
   * @throws the `signal`'s reason when it aborted before the job started (`fn` never ran);
   *   {@link BackendUnavailableError} when the actor stopped first.
   */
  defer<T>(fn: () => T | Promise<T>, opts?: DeferOptions): Promise<T>;
  /**
   * Runs `fn` in the mailbox queue of entity `key`: after every message and job queued for
   * that entity before it has settled, and before any queued after it. Synchronous (no
   * microtask) when the queue is empty.
   * @returns `fn`'s result.
   */
  exclusive<T>(key: string, fn: () => T | Promise<T>): Promise<T>;
}

export interface DeferOptions {
  /** The call's {@link CallScope.signal}: aborted before the job starts, the job is skipped. */
  signal?: AbortSignal;
  /**
   * Jobs deferred under the same key while one is queued and not yet started run once and
   * share its result (a promise of the same value): give one key only to jobs that compute
   * the same thing. The shared job is skipped only when all its callers' signals aborted. A
   * job that has started is never joined, so every result is computed after its call came.
   */
  key?: string;
}

/** What a call's handler gets besides the message. */
export interface CallScope {
  /**
   * Aborted when the caller cancels this call: its HTTP client went away or its timeout
   * passed. For self-messages (`ctx.after`), the actor's stop signal.
   */
  readonly signal: AbortSignal;
}

/** An actor's behaviour. `handle` may answer synchronously (the cached-read fast path). */
export interface ActorDefinition<M extends CallMap> {
  init(ctx: ActorContext<M>): void | Promise<void>;
  handle(msg: MessageOf<M>, ctx: ActorContext<M>, call: CallScope): unknown;
  /** Closes backend sessions; called once on graceful stop. */
  stop(ctx: ActorContext<M>): void | Promise<void>;
  /**
   * How many `ctx.defer` jobs may be pending (awaiting I/O) at once, read after `init`
   * (default 1). An actor whose deferred jobs await a connection pool gives the pool's size.
   */
  deferConcurrency?(settings: Settings): number;
  /**
   * The entity `msg` changes, as a mailbox key (e.g. `instance:web/a1`), or undefined for
   * messages that may run alongside any other (reads, probes). Default: none.
   */
  entityOf?(msg: MessageOf<M>): string | undefined;
}

/** Synchronous work the deferred-job pump does in one macrotask before it yields, ms. */
export const DEFER_SLICE_MS = 2;

/** A call whose handler returned a promise: it may still be cancelled. */
class InFlight implements CallScope {
  cancelled = false;
  #controller: AbortController | undefined;

  // Created on first use: most calls never look at their signal.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.cancelled) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  cancel(): void {
    this.cancelled = true;
    this.#controller?.abort();
  }

  /** The actor is stopping: its work should end, but its caller still gets an answer. */
  abort(reason: unknown): void {
    if (!this.#controller) {
      this.#controller = new AbortController();
    }
    this.#controller.abort(reason);
  }
}

interface Job {
  fn: () => unknown;
  /** Callers' signals; null when a caller cannot be cancelled (the job always runs). */
  signals: AbortSignal[] | null;
  key: string | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  promise: Promise<unknown>;
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
  let actorName = "actor";
  /** Calls answered by a promise not yet settled, by id: what a `cancel` can reach. */
  const inFlight = new Map<number, InFlight>();
  const selfScope: CallScope = { signal: abort.signal };
  const mailbox = new Mailbox();
  // A driver may throw from its own timers, outside any await of ours (postgres.js `nextWrite`,
  // porsager/postgres#1154, #1208): logged, and the actor keeps its state. Deno (2.9) honours
  // `preventDefault()` on a worker's global `error`/`unhandledrejection` (the worker runs on,
  // its `onerror` is not called). Errors thrown by our own code still crash it (restarted).
  const contain = (e: Event, err: unknown) => {
    const at = dependencyFrame(err);
    if (!at) return;
    e.preventDefault();
    log.error("driver error outside any call; contained", {
      actor: actorName,
      error: `${err}`,
      at,
    });
  };
  self.addEventListener("error", (e) => contain(e, e.error));
  self.addEventListener("unhandledrejection", (e) => contain(e, e.reason));
  /** `def.handle`, through the mailbox when the message names an entity. */
  const handle = (
    msg: MessageOf<M>,
    c: ActorContext<M>,
    call: CallScope & { cancelled?: boolean },
  ) => {
    const key = def.entityOf?.(msg);
    if (key === undefined) return def.handle(msg, c, call);
    return mailbox.run(key, () => {
      // Cancelled while it waited for the entity: skipped (its caller gets no reply).
      if (call.cancelled) throw call.signal.reason;
      return def.handle(msg, c, call);
    });
  };

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
    const call = new InFlight();
    let out: unknown;
    try {
      out = handle(msg, c, call);
    } catch (err) {
      reply({ id, ok: false, error: serializeError(err) });
      return;
    }
    if (out instanceof Promise) {
      inFlight.set(id, call);
      out.then(
        (value) => {
          inFlight.delete(id);
          if (!call.cancelled) reply({ id, ok: true, value });
        },
        (err) => {
          inFlight.delete(id);
          if (!call.cancelled) reply({ id, ok: false, error: serializeError(err) });
        },
      );
    } else {
      reply({ id, ok: true, value: out });
    }
  };

  // Deferred jobs: a FIFO drained by a pump that runs in its own macrotasks (setImmediate,
  // ~1 µs a yield; a message posted to the worker is handled before the next immediate,
  // whereas nested zero timeouts are clamped to milliseconds).
  /** Started or skipped jobs before `head` are cleared, so they can be collected. */
  let jobs: (Job | undefined)[] = [];
  let head = 0;
  const queued = new Map<string, Job>();
  let running = 0;
  let concurrency = 1;
  let pumpScheduled = false;

  const schedulePump = () => {
    if (pumpScheduled || head >= jobs.length || running >= concurrency) return;
    pumpScheduled = true;
    setImmediate(pump);
  };
  const settled = () => {
    running--;
    schedulePump();
  };
  const pump = () => {
    pumpScheduled = false;
    const t0 = performance.now();
    while (head < jobs.length && running < concurrency) {
      const job = jobs[head]!;
      jobs[head++] = undefined;
      if (job.key !== undefined) queued.delete(job.key);
      if (abort.signal.aborted) {
        job.reject(new BackendUnavailableError(actorName, `Actor ${actorName} is stopping`));
        continue;
      }
      if (job.signals?.every((s) => s.aborted)) {
        job.reject(job.signals[0].reason);
        continue;
      }
      let out: unknown;
      try {
        out = job.fn();
      } catch (err) {
        job.reject(err);
        continue;
      }
      if (out instanceof Promise) {
        running++;
        out.then(job.resolve, job.reject).finally(settled);
      } else job.resolve(out);
      if (performance.now() - t0 >= DEFER_SLICE_MS) break;
    }
    if (head >= jobs.length) {
      jobs = [];
      head = 0;
    } else if (head > 1024 && head * 2 > jobs.length) {
      jobs = jobs.slice(head);
      head = 0;
    }
    schedulePump();
  };

  const defer = <T>(fn: () => T | Promise<T>, opts: DeferOptions = {}): Promise<T> => {
    const { signal, key } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (abort.signal.aborted) {
      return Promise.reject(
        new BackendUnavailableError(actorName, `Actor ${actorName} is stopping`),
      );
    }
    const shared = key === undefined ? undefined : queued.get(key);
    if (shared) {
      if (!signal) shared.signals = null;
      else shared.signals?.push(signal);
      return shared.promise as Promise<T>;
    }
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const job: Job = { fn, signals: signal ? [signal] : null, key, resolve, reject, promise };
    jobs.push(job);
    if (key !== undefined) queued.set(key, job);
    schedulePump();
    return promise as Promise<T>;
  };

  scope.onmessage = async (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.kind) {
      case "calls": {
        if (!ctx) return;
        for (const call of m.calls) dispatch(call.id, call.msg as MessageOf<M>, ctx);
        return;
      }
      case "cancel": {
        for (const id of m.ids) inFlight.get(id)?.cancel();
        return;
      }
      case "init": {
        log.setLevel(m.settings.LOG_LEVEL);
        actorName = m.actor;
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
                const r = handle(msg, c, selfScope);
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
          defer,
          exclusive: (key, fn) => mailbox.run(key, fn),
        };
        try {
          await def.init(c);
          concurrency = Math.max(1, def.deferConcurrency?.(m.settings) ?? 1);
          ctx = c;
          scope.postMessage({ kind: "ready" });
        } catch (err) {
          scope.postMessage({ kind: "init_failed", error: serializeError(err) });
        }
        return;
      }
      case "stop": {
        const stopping = new BackendUnavailableError(actorName, `Actor ${actorName} is stopping`);
        abort.abort(stopping);
        // In-flight handlers see their signal abort; their callers still get the answer.
        for (const call of inFlight.values()) call.abort(stopping);
        for (const t of timers) clearTimeout(t);
        timers.clear();
        // Queued jobs fail now instead of waiting for a pump that may be behind I/O.
        for (let i = head; i < jobs.length; i++) jobs[i]?.reject(stopping);
        jobs = [];
        head = 0;
        queued.clear();
        try {
          if (ctx) await def.stop(ctx);
        } catch (err) {
          log.warn("actor stop failed", { error: String(err) });
        }
        flush();
        await log.flush(); // the host terminates the worker on "stopped"
        scope.postMessage({ kind: "stopped" });
        return;
      }
      default: {
        const never: never = m;
        log.warn("worker got an unknown message", { m: never });
      }
    }
  };
  // Reaching this line means the worker's module graph has loaded: fetched, type-checked when
  // the runtime checks (deno test does, per worker), its imports evaluated. The client's
  // start timeout runs from here.
  scope.postMessage({ kind: "loaded" });
}

/** The innermost `at …` line of `err`'s stack if it lies in an npm dependency, else "". */
function dependencyFrame(err: unknown): string {
  const frame = /^\s*at .*$/m.exec(err instanceof Error ? err.stack ?? "" : "")?.[0] ?? "";
  return /[\\/](node_modules|registry\.npmjs\.org)[\\/]/.test(frame) ? frame.trim() : "";
}
