/**
 * Main-thread fan-out of committed configuration changes to SSE watchers and long-polling
 * requests. Each change is formatted once and the same bytes go to every matching watcher;
 * a watcher that stops reading is dropped (it resumes with Last-Event-ID), so a slow
 * consumer never delays the others.
 */
import type { ChangeView } from "./model.ts";

export interface WatchFilter {
  environment: string;
  /** undefined: every scope of the environment; else that service and the global scope. */
  service?: string;
}

export function matches(f: WatchFilter, c: ChangeView): boolean {
  if (c.environment !== f.environment) return false;
  return f.service === undefined || c.service_name === null || c.service_name === f.service;
}

const enc = new TextEncoder();

/** The SSE frame of one change: `id` is the change sequence, `event` its type. */
export function sseFrame(c: ChangeView): Uint8Array {
  return enc.encode(`id: ${c.seq}\nevent: ${c.type}\ndata: ${JSON.stringify(c)}\n\n`);
}

type Listener = (c: ChangeView, frame: () => Uint8Array) => void;

/**
 * Watchers by filter. It keeps no change index: where a new watcher starts is the
 * ConfigClient's `changeIndex`, the one owner of the index on this thread.
 */
export class WatchHub {
  readonly #shutdown = new AbortController();

  /** Aborted on shutdown: open streams end so the server can drain. */
  get closing(): AbortSignal {
    return this.#shutdown.signal;
  }

  /** Ends every watch stream and long poll. */
  close(): void {
    this.#shutdown.abort();
  }
  #listeners = new Set<{ filter: WatchFilter; fn: Listener }>();

  get watchers(): number {
    return this.#listeners.size;
  }

  /** Sends each of `changes` (in sequence order) to the watchers whose filter it matches. */
  publish(changes: ChangeView[]): void {
    for (const c of changes) {
      let bytes: Uint8Array | undefined;
      const frame = () => bytes ??= sseFrame(c);
      for (const l of this.#listeners) if (matches(l.filter, c)) l.fn(c, frame);
    }
  }

  /** Calls `fn` for each matching change from now on; returns the unsubscribe function. */
  subscribe(filter: WatchFilter, fn: Listener): () => void {
    const entry = { filter, fn };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /**
   * Resolves true when a matching change with seq > `after` arrives, false after `ms`.
   * `already` is consulted after subscribing, so a change committed in between is not missed.
   */
  async wait(
    filter: WatchFilter,
    after: number,
    ms: number,
    already: () => Promise<boolean>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const unsubscribe = this.subscribe(filter, (c) => {
      if (c.seq > after) resolve(true);
    });
    const timer = setTimeout(() => resolve(false), ms);
    const onAbort = () => resolve(false);
    signal?.addEventListener("abort", onAbort);
    this.closing.addEventListener("abort", onAbort);
    try {
      if (await already()) resolve(true);
      return await promise;
    } finally {
      unsubscribe();
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.closing.removeEventListener("abort", onAbort);
    }
  }
}
