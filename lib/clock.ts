/**
 * Time as a scheduler sees it: a monotonic reading and one-shot timers. Code that schedules
 * takes a `Clock` (default {@link realClock}) so its tests can advance time by hand instead of
 * sleeping through it.
 */

/** A timer's id: what the global `setTimeout` returns, or a number from a test clock. */
export type TimerHandle = number | ReturnType<typeof setTimeout>;

/** A monotonic clock in milliseconds and one-shot timers on it. */
export interface Clock {
  /** Milliseconds on a monotonic clock: only differences between two readings mean anything. */
  now(): number;
  /**
   * Calls `fn` once, `ms` milliseconds from now (a negative `ms` counts as 0). Delays past
   * 2^31 - 1 ms are the caller's to cap: the real timer would fire at once.
   */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired; an unknown or fired handle is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The runtime's clock: `performance.now()` and the global timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle),
};
