/** Small promise helpers shared by the actor runtime, the actors and the routes. */

/**
 * Never runs `run` twice at once, and never loses a request for a run: a call while a run is
 * under way joins the next run, which starts when the current one ends, never the one already
 * under way — so every answer (and every effect) comes from a run begun after the call was
 * made. Under load that is one run per wave of callers instead of one each. This is the one
 * replacement for hand-rolled "running / run again" flag pairs.
 */
export function coalesce<T>(run: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  let next: Promise<T> | null = null;
  const call = (): Promise<T> => {
    if (!inFlight) {
      inFlight = run().finally(() => inFlight = null);
      return inFlight;
    }
    next ??= inFlight.catch(() => {}).then(() => {
      next = null;
      return call();
    });
    return next;
  };
  return call;
}

/** Waits until `p` settles or `ms` pass, whichever is first. Never throws. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    p.then(() => {}, () => {}),
    new Promise((r) => timer = setTimeout(r, ms)),
  ]);
  clearTimeout(timer);
}

/**
 * `fn()`, or a rejection with "no answer within `ms` ms" when it takes longer (`fn` is not
 * cancelled: its late result is ignored).
 */
export async function withinMs<T>(fn: () => Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
