/**
 * The health-check schedule: which instance is checked when, with bounded concurrency and
 * never two checks of one instance at once. It performs no I/O itself; the check is a callback
 * (the health actor's probe + status update), so the same scheduler serves tests and benches.
 */
import { type Clock, realClock, type TimerHandle } from "../clock.ts";
import { log } from "../log.ts";

/** Scheduler configuration; durations in milliseconds. */
export interface SchedulerOptions {
  /** Target time between two checks of one key (`SERVICE_HEALTH_CHECK_INTERVAL`). */
  intervalMs: number;
  /** Checks in flight at most (`HEALTH_CHECK_CONCURRENCY`). */
  concurrency: number;
  /** 0..1, default 0.1: each key's next check comes at interval * (1 ± jitter). */
  jitter?: number;
  /** Runs one key's check; must not throw (a throw is logged and otherwise ignored). */
  check: (key: string) => Promise<void>;
  /** Time and timers (default {@link realClock}); tests pass a clock they advance by hand. */
  clock?: Clock;
  /** Uniform in [0, 1), for the stagger and the jitter (default `Math.random`). */
  random?: () => number;
}

/** Counters for metrics and benches. */
export interface SchedulerStats {
  /** Checks started since construction (scheduled and manual). */
  checks: number;
  /** Largest delay between a scheduled check's due time and its start (queueing + timer). */
  maxLatenessMs: number;
  /** Checks running now. */
  inFlight: number;
  /** Checks due (or requested by runNow) and waiting for a free slot. */
  queued: number;
}

type Phase = "idle" | "scheduled" | "queued" | "running";

interface Entry {
  key: string;
  phase: Phase;
  /** When the next scheduled check is due (valid in "scheduled" and "queued"). */
  due: number;
  /** Position in the heap while "scheduled", else -1. */
  heapIndex: number;
  /** Ticket of the live queue slot while "queued": older slots for the entry are stale. */
  ticket: number;
}

interface QueueSlot {
  entry: Entry;
  ticket: number;
}

interface ManualRequest {
  key: string;
  resolve: () => void;
}

// setTimeout's delay is a signed 32-bit integer; a longer one would fire at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps every added key checked once per interval: first check after a random stagger in
 * [0, interval); never two checks of one key at once (a due key whose check is still running
 * is skipped until it finishes, then rescheduled from its end); at most `concurrency` checks
 * run at once, the rest queue FIFO by due time; `remove(key)` cancels its schedule (a running
 * check finishes but is not rescheduled); `stop()` cancels everything and resolves when running
 * checks finished. Uses one timer for the earliest due key (not one per key) so 10,000 keys are cheap.
 *
 * The next check of a key is due one jittered interval after its previous check *started*, so
 * the rate holds whatever the check's duration; when a check outlasts that, the next is due one
 * interval after it *ended* (skipping, not bunching, the missed slot). A manual `runNow` counts
 * as a check: it takes the key's slot and the key's schedule restarts from it.
 */
export class Scheduler {
  #interval: number;
  #concurrency: number;
  #jitter: number;
  #check: (key: string) => Promise<void>;
  #clock: Clock;
  #random: () => number;

  #entries = new Map<string, Entry>();
  /** Min-heap by `due` of "scheduled" entries: the timer only ever needs its top. */
  #heap: Entry[] = [];
  /** Due entries waiting for a slot, FIFO (a head index keeps dequeue O(1)). */
  #queue: QueueSlot[] = [];
  #queueHead = 0;
  #queuedLive = 0;
  #nextTicket = 1;
  /** Manual requests go first: someone is waiting on them. */
  #manual: ManualRequest[] = [];
  #manualHead = 0;
  /** Per key, the promise of its pending or running check: the "one at a time" guard. */
  #running = new Map<string, Promise<void>>();
  #inFlight = 0;

  #started = false;
  #timer: TimerHandle | null = null;
  #timerDue = Infinity;

  #checks = 0;
  #maxLateness = 0;

  /** Validates options; throws RangeError on an unusable interval or concurrency. */
  constructor(o: SchedulerOptions) {
    if (!(o.intervalMs > 0) || !Number.isFinite(o.intervalMs)) {
      throw new RangeError(`intervalMs must be a positive number, got ${o.intervalMs}`);
    }
    if (!(o.concurrency >= 1) || !Number.isFinite(o.concurrency)) {
      throw new RangeError(`concurrency must be at least 1, got ${o.concurrency}`);
    }
    this.#interval = o.intervalMs;
    this.#concurrency = Math.floor(o.concurrency);
    this.#jitter = Math.min(1, Math.max(0, o.jitter ?? 0.1));
    this.#check = o.check;
    this.#clock = o.clock ?? realClock;
    this.#random = o.random ?? Math.random;
  }

  /** Schedules `key` (first check after a random stagger once started); no-op if present. */
  add(key: string): void {
    if (this.#entries.has(key)) return;
    const e: Entry = { key, phase: "idle", due: 0, heapIndex: -1, ticket: 0 };
    this.#entries.set(key, e);
    // A manual check of a not-yet-added key may be running: let it finish first.
    if (this.#running.has(key)) e.phase = "running";
    else if (this.#started) this.#schedule(e, this.#clock.now() + this.#random() * this.#interval);
  }

  /** Cancels `key`'s schedule; a running check of it finishes but is not rescheduled. */
  remove(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#unschedule(e);
    this.#entries.delete(key);
    this.#arm();
  }

  /** Whether `key` is scheduled. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Number of scheduled keys. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Runs `key`'s check now (manual trigger), unless one is running: then waits for that one.
   * The run takes a concurrency slot ahead of scheduled checks. Works whether or not the
   * scheduler is started and whether or not `key` was added (then it runs once, unscheduled).
   */
  runNow(key: string): Promise<void> {
    const pending = this.#running.get(key);
    if (pending) return pending;
    const e = this.#entries.get(key);
    if (e) {
      this.#unschedule(e);
      e.phase = "running";
      this.#arm();
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#running.set(key, promise);
    this.#manual.push({ key, resolve });
    this.#pump();
    return promise;
  }

  /** Starts checking: every added key gets its first check after a random stagger. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const now = this.#clock.now();
    for (const e of this.#entries.values()) {
      if (e.phase === "idle") this.#schedule(e, now + this.#random() * this.#interval);
    }
    this.#arm();
  }

  /**
   * Cancels every scheduled and queued check and resolves once running checks (and manual
   * requests already made, whose callers are waiting) finished. Keys stay added, so a later
   * `start()` (e.g. leadership regained) resumes them with a fresh stagger.
   */
  async stop(): Promise<void> {
    this.#started = false;
    this.#clearTimer();
    for (const e of this.#heap) {
      e.phase = "idle";
      e.heapIndex = -1;
    }
    this.#heap = [];
    for (let i = this.#queueHead; i < this.#queue.length; i++) {
      const { entry, ticket } = this.#queue[i];
      if (entry.phase === "queued" && entry.ticket === ticket) entry.phase = "idle";
    }
    this.#queue = [];
    this.#queueHead = 0;
    this.#queuedLive = 0;
    // Checks finishing now see #started false and go idle; loop in case runNow adds more.
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()]);
  }

  /** Stats for metrics/bench: checks run, max observed lateness (ms) of a check vs its due time. */
  stats(): SchedulerStats {
    return {
      checks: this.#checks,
      maxLatenessMs: this.#maxLateness,
      inFlight: this.#inFlight,
      queued: this.#queuedLive + (this.#manual.length - this.#manualHead),
    };
  }

  /** A jittered interval, so keys added together drift apart instead of probing in bursts. */
  #period(): number {
    return this.#interval * (1 + this.#jitter * (2 * this.#random() - 1));
  }

  #schedule(e: Entry, due: number): void {
    e.due = due;
    e.phase = "scheduled";
    this.#heapPush(e);
    this.#arm();
  }

  /** Takes `e` out of the heap or the queue (queue slots are invalidated lazily). */
  #unschedule(e: Entry): void {
    if (e.phase === "scheduled") this.#heapRemove(e);
    else if (e.phase === "queued") this.#queuedLive--;
    e.phase = "idle";
  }

  /** Keeps one timer, for the earliest due key. */
  #arm(): void {
    if (!this.#started || this.#heap.length === 0) {
      this.#clearTimer();
      return;
    }
    const due = this.#heap[0].due;
    // A timer firing no later than needed is kept: firing early only re-arms, and not
    // re-creating it on every add/remove keeps 10,000 keys cheap.
    if (this.#timer !== null && this.#timerDue <= due) return;
    this.#clearTimer();
    this.#timerDue = due;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, due - this.#clock.now()));
    this.#timer = this.#clock.setTimeout(() => this.#fire(), delay);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerDue = Infinity;
  }

  #fire(): void {
    this.#timer = null;
    this.#timerDue = Infinity;
    if (!this.#started) return;
    // 1 ms of tolerance: timers may fire a hair before the monotonic clock reaches `due`.
    const now = this.#clock.now() + 1;
    while (this.#heap.length > 0 && this.#heap[0].due <= now) {
      const e = this.#heapPop();
      e.phase = "queued";
      e.ticket = this.#nextTicket++;
      this.#queue.push({ entry: e, ticket: e.ticket });
      this.#queuedLive++;
    }
    this.#pump();
    this.#arm();
  }

  /** Starts queued checks while slots are free: manual requests first, then FIFO by due time. */
  #pump(): void {
    while (this.#inFlight < this.#concurrency) {
      if (this.#manualHead < this.#manual.length) {
        const m = this.#manual[this.#manualHead++];
        this.#execute(m.key, null, m.resolve);
        continue;
      }
      const slot = this.#dequeue();
      if (!slot) break;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#running.set(slot.key, promise);
      this.#execute(slot.key, slot.due, resolve);
    }
    if (this.#manualHead > 0 && this.#manualHead === this.#manual.length) {
      this.#manual = [];
      this.#manualHead = 0;
    }
  }

  #dequeue(): { key: string; due: number } | null {
    while (this.#queueHead < this.#queue.length) {
      const { entry, ticket } = this.#queue[this.#queueHead++];
      // Slots of removed keys, of keys taken by runNow and of older rounds are stale.
      if (entry.phase !== "queued" || entry.ticket !== ticket) continue;
      if (this.#entries.get(entry.key) !== entry) continue;
      this.#queuedLive--;
      entry.phase = "running";
      this.#compactQueue();
      return { key: entry.key, due: entry.due };
    }
    this.#queue = [];
    this.#queueHead = 0;
    return null;
  }

  #compactQueue(): void {
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #execute(key: string, due: number | null, resolve: () => void): void {
    this.#inFlight++;
    this.#checks++;
    const start = this.#clock.now();
    if (due !== null) this.#maxLateness = Math.max(this.#maxLateness, start - due);
    this.#invoke(key).then(() => {
      const end = this.#clock.now();
      this.#inFlight--;
      this.#running.delete(key);
      const e = this.#entries.get(key);
      if (e && e.phase === "running") {
        if (this.#started) {
          let next = start + this.#period();
          if (next <= end) next = end + this.#period();
          this.#schedule(e, next);
        } else {
          e.phase = "idle";
        }
      }
      resolve();
      this.#pump();
    });
  }

  async #invoke(key: string): Promise<void> {
    try {
      await this.#check(key);
    } catch (err) {
      // The contract says check never throws; if it does, the schedule must survive it.
      log.error("health check callback threw", {
        key,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  #heapPush(e: Entry): void {
    e.heapIndex = this.#heap.length;
    this.#heap.push(e);
    this.#siftUp(e.heapIndex);
  }

  #heapPop(): Entry {
    const top = this.#heap[0];
    this.#heapRemove(top);
    return top;
  }

  #heapRemove(e: Entry): void {
    const i = e.heapIndex;
    const last = this.#heap.pop()!;
    if (last !== e) {
      this.#heap[i] = last;
      last.heapIndex = i;
      this.#siftUp(i);
      this.#siftDown(last.heapIndex);
    }
    e.heapIndex = -1;
  }

  #siftUp(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].due <= h[i].due) break;
      this.#swap(i, p);
      i = p;
    }
  }

  #siftDown(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l].due < h[m].due) m = l;
      if (r < h.length && h[r].due < h[m].due) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(a: number, b: number): void {
    const h = this.#heap;
    [h[a], h[b]] = [h[b], h[a]];
    h[a].heapIndex = a;
    h[b].heapIndex = b;
  }
}
