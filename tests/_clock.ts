/**
 * A {@link Clock} that moves only when a test advances it, so schedule tests assert exact
 * times instead of sleeping through them.
 */
import type { Clock, TimerHandle } from "../lib/clock.ts";

interface Timer {
  at: number;
  /** Creation order: timers due at the same time fire in the order they were set. */
  seq: number;
  fn: () => void;
}

/** Lets every promise callback queued so far run (and those they queue, and so on). */
export function settle(): Promise<void> {
  // A macrotask runs only once the microtask queue is empty, however deep its chains.
  return new Promise((r) => setTimeout(r, 0));
}

/** A manual clock starting at 0 ms; timers fire only inside {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers = new Map<TimerHandle, Timer>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Resolves `ms` from now on this clock. */
  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, ms));
  }

  /**
   * Moves time forward by `ms`, firing each timer that comes due at its own time (earliest
   * first) and letting the promise callbacks it starts settle before the next one fires.
   * `onTick`, when given, runs after every timer and once at the end (to sample state).
   */
  async advance(ms: number, onTick?: () => void): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      let next: [TimerHandle, Timer] | undefined;
      for (const entry of this.#timers) {
        const t = entry[1];
        if (t.at > end) continue;
        if (!next || t.at < next[1].at || (t.at === next[1].at && t.seq < next[1].seq)) {
          next = entry;
        }
      }
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
      await settle();
      onTick?.();
    }
    this.#now = end;
    await settle();
    onTick?.();
  }
}

/** A `random()` that returns `values` in turn, then repeats the last one. */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

/** A deterministic `random()` in [0, 1) from `seed` (mulberry32), for reproducible jitter. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
