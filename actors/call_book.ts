/**
 * The calls of one {@link ActorClient} that have no answer yet: ids, deadlines, the batch of
 * this turn, cancellations to tell the worker, and call-duration metrics. The client owns the
 * worker and decides when to flush; this book decides what a flush posts.
 */
import {
  ActorTimeoutError,
  CallCancelledError,
  deserializeError,
  serializeError,
} from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { actorCallDuration, type HistogramSeries } from "../lib/metrics.ts";
import type { Call, Reply, ToWorker } from "./protocol.ts";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  deadline: number;
  type: string;
  /** performance.now() when the call was made. */
  t0: number;
  /** The flush that posts (or posted) it: posted once {@link CallBook.#flushes} is past. */
  flush: number;
  /** Removes the abort listener of the call's signal. */
  detach?: () => void;
}

export class CallBook {
  readonly #name: string;
  readonly #timeoutMs: number;
  /** Asks the client for a flush: something (a cancellation) is waiting to be posted. */
  readonly #wantFlush: () => void;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  /** Calls not yet posted: either batched for this turn or waiting for a (re)started worker. */
  #queue: Call[] = [];
  /** Calls of {@link #queue} cancelled or timed out before posting (left out at flush). */
  #dropped = 0;
  /** Posted calls whose caller is gone, to tell the worker at the next flush. */
  #cancels: number[] = [];
  /** Flushes that posted the queue so far. */
  #flushes = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  /** This actor's call-duration series, looked up once (every reply observes one). */
  readonly #okSeries: HistogramSeries;
  #errorSeries: HistogramSeries | undefined;

  /**
   * @param name the actor's name, for errors, logs and metrics.
   * @param timeoutMs the client's default call timeout, ms: paces the deadline sweeper.
   * @param wantFlush called when a cancellation waits to be posted.
   */
  constructor(name: string, timeoutMs: number, wantFlush: () => void) {
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#wantFlush = wantFlush;
    this.#okSeries = actorCallDuration.series([name, "ok"]);
  }

  /** Calls posted and not yet answered, plus calls queued. */
  get size(): number {
    return this.#pending.size;
  }

  /** Whether calls wait to be posted. */
  get queued(): boolean {
    return this.#queue.length > 0;
  }

  /**
   * Enters a call: queued for the next flush, rejected at its deadline or when `signal`
   * aborts. A `signal` already aborted is the caller's to check first.
   * @returns the promise of the actor's reply.
   */
  add(msg: { type: string }, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = {
        resolve,
        reject,
        deadline: Date.now() + timeoutMs,
        type: msg.type,
        t0: performance.now(),
        flush: this.#flushes,
      };
      if (signal) {
        const onAbort = () => this.#drop(id, p, new CallCancelledError(this.#name, msg.type));
        signal.addEventListener("abort", onAbort, { once: true });
        p.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.#pending.set(id, p);
      this.#queue.push({ id, msg });
      this.#startSweeper();
    });
  }

  /** Settles the calls these replies answer; replies to forgotten calls are ignored. */
  answer(replies: Reply[]): void {
    for (const r of replies) {
      const p = this.#pending.get(r.id);
      if (!p) continue; // timed out or cancelled already
      this.#pending.delete(r.id);
      p.detach?.();
      actorCallDuration.observeInto(
        r.ok
          ? this.#okSeries
          : (this.#errorSeries ??= actorCallDuration.series([this.#name, "error"])),
        (performance.now() - p.t0) / 1000,
      );
      if (r.ok) p.resolve(r.value);
      else p.reject(deserializeError(r.error));
    }
    // The sweeper stops itself once it finds nothing pending: no timer churn per batch.
  }

  /**
   * The messages a flush posts, in order: the cancellations, then this turn's calls.
   * Marks the calls posted.
   */
  take(): ToWorker[] {
    const out: ToWorker[] = [];
    if (this.#cancels.length > 0) {
      out.push({ kind: "cancel", ids: this.#cancels });
      this.#cancels = [];
    }
    if (this.#queue.length === 0) return out;
    let calls = this.#queue;
    this.#queue = [];
    this.#flushes++;
    if (this.#dropped > 0) {
      this.#dropped = 0;
      calls = calls.filter((c) => this.#pending.has(c.id));
      if (calls.length === 0) return out;
    }
    out.push({ kind: "calls", calls });
    return out;
  }

  /** These calls could not be posted (a message that cannot be cloned): they fail with `err`. */
  unposted(calls: Call[], err: unknown): void {
    for (const c of calls) {
      const p = this.#pending.get(c.id);
      this.#pending.delete(c.id);
      p?.detach?.();
      p?.reject(deserializeError(serializeError(err)));
    }
  }

  /**
   * Fails every call with `err` (the worker crashed: the new one never saw these ids). Calls
   * still queued stay queued for the new worker, bounded by the sweeper.
   */
  failAll(err: unknown): void {
    for (const p of this.#pending.values()) {
      p.detach?.();
      p.reject(err);
    }
    this.#pending.clear();
    this.#cancels = [];
    if (this.#queue.length > 0) this.#startSweeper();
  }

  /** Fails every call with `err` and forgets everything (the client stopped). */
  clear(err: unknown): void {
    this.failAll(err);
    this.#queue = [];
    this.#dropped = 0;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** Records the duration of a call that never got an answer. */
  observe(outcome: "cancelled" | "timeout", t0: number): void {
    actorCallDuration.observeInto(
      actorCallDuration.series([this.#name, outcome]),
      (performance.now() - t0) / 1000,
    );
  }

  /**
   * Forgets a pending call and rejects it with `err` (cancelled or timed out): unposted, it
   * will never be sent; posted, the worker is told to drop it and its answer is discarded.
   */
  #drop(id: number, p: Pending, err: CallCancelledError | ActorTimeoutError): void {
    if (this.#pending.get(id) !== p) return;
    this.#pending.delete(id);
    p.detach?.();
    this.observe(err instanceof CallCancelledError ? "cancelled" : "timeout", p.t0);
    if (p.flush < this.#flushes) {
      this.#cancels.push(id);
      this.#wantFlush();
    } else this.#dropped++;
    p.reject(err);
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const every = Math.max(5, Math.min(100, Math.floor(this.#timeoutMs / 10)));
    this.#sweeper = setInterval(() => this.#sweep(), every);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#drop(id, p, new ActorTimeoutError(this.#name, this.#timeoutMs));
      log.warn("actor call timed out", { actor: this.#name, type: p.type });
    }
    if (this.#pending.size === 0 && this.#queue.length === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
