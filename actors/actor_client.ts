/**
 * The main-thread side of an actor: one long-lived Worker, supervised.
 *
 * - Calls get ids and a pending-reply entry with a deadline; an expired call rejects with
 *   {@link ActorTimeoutError} (→ 504).
 * - Starting is bounded from the moment the worker's module has loaded (its first message):
 *   loading is Deno's work (type-checking each worker's module graph under `deno test`, a cold
 *   cache), not the actor's, and takes what it takes; a module that fails to load fails the
 *   start at once.
 * - Calls issued in the same event-loop turn are sent as one `postMessage`: the hop is the
 *   main cost of a cached read.
 * - A worker that dies (uncaught error) is logged and restarted with backoff; its in-flight
 *   calls fail at once with {@link BackendUnavailableError} (→ 503). Calls made while it
 *   restarts wait for the new worker, bounded by their timeout.
 * - A call whose caller is gone (its `signal` aborted: the HTTP client hung up) rejects at
 *   once with {@link CallCancelledError}. Not yet posted, it is never sent; posted, its
 *   answer is discarded and the worker is told (`cancel`, batched like calls) so that it
 *   skips the work if it has not started it. A call that timed out is cancelled the same way.
 */
import { setImmediate } from "node:timers";
import { BackendUnavailableError, CallCancelledError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { coalesce, settleWithin } from "../lib/async.ts";
import { type Credential, type Settings, withCredentials } from "../lib/settings.ts";
import type { CommonEvent } from "./common_protocol.ts";
import { CallBook } from "./call_book.ts";
import { StartWaiters } from "./start_waiters.ts";
import type { BackendStatus, CallMap, FromWorker, MessageOf, ToWorker } from "./protocol.ts";

/**
 * Client options. `E` is the actor's own events (declared in its protocol file); `onEvent`
 * gets those and the {@link CommonEvent} every actor sends.
 */
export interface ActorClientOptions<E extends { type: string } = never> {
  /** Actor name, used in logs and errors. */
  name: string;
  /** Worker module, e.g. `new URL("./config_worker.ts", import.meta.url)`. */
  url: URL;
  settings: Settings;
  /** Default per-call timeout in ms (default `settings.ACTOR_CALL_TIMEOUT_MS`). */
  timeoutMs?: number;
  /**
   * The credentials among the settings this actor uses; every other one is withheld from
   * its worker (least privilege across the worker boundary). Default: none.
   */
  credentials?: readonly Credential[];
  /** Options passed to the worker's `init` (tests use it). */
  options?: Record<string, unknown>;
  /** Called for each unsolicited event. */
  onEvent?: (event: E | CommonEvent) => void;
}

/** Options of one {@link ActorClient.call}. */
export interface CallOptions {
  /** Timeout in ms (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /**
   * The caller's interest in the answer, e.g. the request's `c.req.raw.signal`: when it
   * aborts, the call rejects with {@link CallCancelledError} and the actor drops its work.
   */
  signal?: AbortSignal;
}

const MAX_RESTART_DELAY_MS = 5_000;

/** A client of the actor whose calls are `M` and whose own events are `E`. */
export class ActorClient<M extends CallMap, E extends { type: string } = never> {
  readonly name: string;
  #opts: ActorClientOptions<E>;
  readonly #listeners = new Set<(event: E | CommonEvent) => void>();
  readonly #restartListeners = new Set<() => void>();
  #timeoutMs: number;
  #worker: Worker | null = null;
  #ready = false;
  /** Whether the current worker's module has loaded (it posted `loaded`). */
  #loaded = false;
  readonly #starts: StartWaiters;
  #stopping = false;
  readonly #book: CallBook;
  #flushScheduled = false;
  #restartDelay = 100;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restarts = 0;
  #backends: BackendStatus[] = [];
  /** Date.now() when the current worker was spawned. */
  #startedAt = 0;
  /** performance.now() when the current worker was spawned and when its module loaded. */
  #spawnedAt = 0;
  #loadedAt = 0;

  constructor(opts: ActorClientOptions<E>) {
    this.name = opts.name;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? opts.settings.ACTOR_CALL_TIMEOUT_MS;
    this.#starts = new StartWaiters(opts.name);
    this.#book = new CallBook(opts.name, this.#timeoutMs, () => {
      if (this.#ready) this.#scheduleFlush();
    });
  }

  /** How many times the worker was restarted after a crash. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Whether the worker is up and initialised. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Whether {@link stop} was called: no call is accepted any more. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Calls posted and not yet answered, plus calls queued. */
  get queueDepth(): number {
    return this.#book.size;
  }

  /** Last backend states the actor reported. */
  get backends(): BackendStatus[] {
    return this.#backends;
  }

  /** What the worker is told at `init`: its settings, less the credentials it does not use. */
  initMessage(): Extract<ToWorker, { kind: "init" }> {
    return {
      kind: "init",
      actor: this.name,
      settings: withCredentials(this.#opts.settings, this.#opts.credentials ?? []),
      options: this.#opts.options ?? {},
    };
  }

  /**
   * Starts the worker and resolves when it has initialised. `timeoutMs` bounds the actor's
   * `init` and counts from when the worker's module has loaded, not from the spawn: loading
   * and type-checking a module graph is the runtime's work and, on a cold cache or a busy
   * machine, can take longer than any init budget. On failure the client is stopped.
   * @throws {BackendUnavailableError} when the module fails to load, or the worker's init
   *   fails or does not finish within `timeoutMs` of the module loading.
   */
  async start(timeoutMs = 30_000): Promise<void> {
    this.#spawn();
    try {
      if (!this.#ready) await this.#starts.wait(timeoutMs, this.#loaded);
    } catch (err) {
      // Nobody will call a client whose start failed: no restart loop behind its back.
      await this.stop(0);
      throw err;
    }
  }

  /**
   * Calls `fn` for each event of this actor from now on, after the `onEvent` given at
   * construction (wiring between actors made after the clients exist).
   * @returns a function that stops the calls.
   */
  listen(fn: (event: E | CommonEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Calls `fn` each time a worker restarted after a crash is ready: what the old one was told
   * (by events of other actors) is lost with it.
   * @returns a function that stops the calls.
   */
  onRestarted(fn: () => void): () => void {
    this.#restartListeners.add(fn);
    return () => this.#restartListeners.delete(fn);
  }

  /** Called each time a worker (re)starts; state derived from the old one is void. */
  protected onSpawn(): void {}

  #spawn(): void {
    this.onSpawn();
    const worker = new Worker(this.#opts.url, { type: "module", name: this.name });
    this.#worker = worker;
    this.#ready = false;
    this.#loaded = false;
    this.#startedAt = Date.now();
    this.#spawnedAt = performance.now();
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(worker, e.data);
    worker.onerror = (e: ErrorEvent) => {
      // Without preventDefault an uncaught worker error would terminate the whole process.
      e.preventDefault();
      this.#onCrash(worker, e.message || String(e.error));
    };
    worker.onmessageerror = () => this.#onCrash(worker, "message could not be deserialized");
    // `init` waits for `loaded`: a message that reaches a worker whose module is still
    // loading (awaiting at its top level) finds no handler and is lost.
  }

  #onMessage(worker: Worker, m: FromWorker): void {
    if (worker !== this.#worker) return;
    switch (m.kind) {
      case "replies":
        this.#book.answer(m.replies);
        return;
      case "loaded":
        this.#loaded = true;
        this.#loadedAt = performance.now();
        this.#post(worker, this.initMessage());
        this.#starts.loaded();
        return;
      case "ready": {
        this.#ready = true;
        const now = performance.now();
        log.debug("actor started", {
          actor: this.name,
          load_ms: Math.round(this.#loadedAt - this.#spawnedAt),
          init_ms: Math.round(now - this.#loadedAt),
        });
        this.#starts.ready();
        if (this.#restarts > 0) { for (const fn of this.#restartListeners) fn(); }
        if (this.#book.queued) this.#scheduleFlush();
        return;
      }
      case "init_failed":
        this.#onCrash(worker, `init failed: ${m.error.message}`);
        return;
      case "event": {
        // The worker behind this client sends only its actor's events.
        const event = m.event as E | CommonEvent;
        if (event.type === "backend_status") this.#backends = (event as CommonEvent).backends;
        this.#opts.onEvent?.(event);
        for (const l of this.#listeners) l(event);
        return;
      }
      case "stopped":
        return;
      default: {
        const never: never = m;
        log.warn("actor sent an unknown message", { actor: this.name, m: never });
      }
    }
  }

  #onCrash(worker: Worker, reason: string): void {
    if (worker !== this.#worker) return;
    worker.terminate();
    this.#worker = null;
    this.#ready = false;
    const failed = this.#book.size;
    // The new worker never saw the calls posted to this one; queued calls wait for it.
    this.#book.failAll(
      new BackendUnavailableError(this.name, `Actor ${this.name} crashed and is restarting`),
    );
    if (this.#stopping) return;
    if (!this.#loaded && this.#starts.waiting) {
      // A module that did not load will not load on a retry either (a syntax or type error, a
      // missing import, a throw at its top level): start() fails now, naming why, and stops.
      this.#starts.failed(`its module did not load: ${reason}`);
      return;
    }
    // Reset the backoff when the previous incarnation had been stable for a while.
    if (Date.now() - this.#startedAt > 30_000) this.#restartDelay = 100;
    log.error("actor crashed; restarting", {
      actor: this.name,
      reason,
      failed_calls: failed,
      restart_in_ms: this.#restartDelay,
    });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#restarts++;
      this.#spawn();
    }, this.#restartDelay);
    this.#restartDelay = Math.min(this.#restartDelay * 2, MAX_RESTART_DELAY_MS);
  }

  /**
   * Sends one message and resolves with the actor's reply.
   * @param options a {@link CallOptions}, or just its timeout in ms.
   * @throws {ActorTimeoutError} when no reply comes within the timeout.
   * @throws {BackendUnavailableError} when the actor crashed or is stopped.
   * @throws {CallCancelledError} when `options.signal` aborted before the reply.
   * @throws whatever domain error the actor replied with.
   */
  call<K extends keyof M & string>(
    msg: { type: K } & M[K]["req"],
    options: CallOptions | number = {},
  ): Promise<M[K]["res"]> {
    const { timeoutMs = this.#timeoutMs, signal } = typeof options === "number"
      ? { timeoutMs: options }
      : options;
    if (this.#stopping) {
      return Promise.reject(
        new BackendUnavailableError(this.name, `Actor ${this.name} is stopping`),
      );
    }
    if (signal?.aborted) {
      this.#book.observe("cancelled", performance.now());
      return Promise.reject(new CallCancelledError(this.name, msg.type));
    }
    const reply = this.#book.add(msg, timeoutMs, signal) as Promise<M[K]["res"]>;
    if (this.#ready) this.#scheduleFlush();
    return reply;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Every call made in this event-loop turn goes in one message, sent at the turn's end.
    // A post that wakes a sleeping worker costs the sender ~10 µs (~0.5 µs to an awake
    // one), so under load one message a turn is the cheap path. Sending a lone call after
    // the microtasks instead cost evaluate 16 % of its req/s and saved no measurable latency
    // at one connection (p50 ~110 µs either way, bench with wrk -c1).
    setImmediate(this.#flush);
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    if (!this.#ready || !this.#worker) return;
    for (const m of this.#book.take()) this.#post(this.#worker, m);
  };

  #post(worker: Worker, m: ToWorker): void {
    try {
      worker.postMessage(m);
    } catch (err) {
      // A message that cannot be cloned is a programming error: fail those calls, not the actor.
      if (m.kind === "calls") this.#book.unposted(m.calls, err);
      else throw err;
    }
  }

  /**
   * Graceful stop: no new calls, wait for in-flight replies (bounded), let the worker close
   * its backend sessions, then terminate it.
   */
  async stop(deadlineMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    const end = Date.now() + deadlineMs;
    while (this.#book.size > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const worker = this.#worker;
    if (worker) {
      const stopped = new Promise<void>((resolve) => {
        const prev = worker.onmessage;
        worker.onmessage = (e: MessageEvent<FromWorker>) => {
          if (e.data.kind === "stopped") resolve();
          else prev?.call(worker, e);
        };
        worker.onerror = (e) => {
          e.preventDefault();
          resolve();
        };
      });
      this.#post(worker, { kind: "stop" });
      await settleWithin(stopped, Math.max(0, end - Date.now()));
      worker.terminate();
    }
    this.#worker = null;
    this.#ready = false;
    this.#starts.failed("it was stopped while starting");
    this.#book.clear(new BackendUnavailableError(this.name, `Actor ${this.name} stopped`));
  }

  #ping = coalesce(() => this.call({ type: "ping" } as MessageOf<M> & { type: string }));

  /**
   * A round trip to the actor (`ping`), shared by concurrent callers: a caller joins the
   * next round trip that starts after its call, never one already under way, so the answer
   * always proves the actor alive after the call was made. Under load this is one message
   * per actor per round trip instead of one per request.
   */
  ping(): Promise<unknown> {
    return this.#ping();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
