/**
 * The outbox relay: publishes committed changes, in sequence order, from the change log to
 * an {@link OutboxSink}, and marks them sent once the sink acknowledged them. One replica
 * relays at a time (the {@link RelayLock}); changes stay in the outbox until then.
 */
import { coalesce } from "../async.ts";
import { log } from "../log.ts";
import { eventView, type StoredChange } from "./model.ts";
import type { ConfigStore } from "./store.ts";
import type { OutboxMessage, OutboxSink, RelayLock } from "./adapters.ts";

/** How often the outbox is checked when nothing nudges the relay, ms. */
export const RELAY_MS = 1_000;
/** Changes per send. */
const BATCH = 500;

/** The event a change is published as. */
export function outboxMessage(c: StoredChange): OutboxMessage {
  return {
    key: `${c.environment}/${c.service}/${c.key}`,
    value: JSON.stringify(eventView(c)),
    eventId: c.event_id,
  };
}

export class OutboxRelay {
  readonly #store: ConfigStore;
  readonly #sink: OutboxSink;
  readonly #lock: RelayLock;
  readonly #signal: AbortSignal;
  /** Retry delay after a failed round, ms: doubles up to 5 s, back to 200 on success. */
  #delay = 200;

  /**
   * Relays once: takes (or confirms) the lock, then sends the whole backlog. Never runs
   * twice at once; a call during a round gets the next round.
   * @returns ms until the next periodic round: {@link RELAY_MS}, or the backoff after a
   *   failure. Never throws.
   */
  readonly run: () => Promise<number>;

  /** `signal`: aborted on stop; a round it interrupts is not a failure. */
  constructor(opts: {
    store: ConfigStore;
    sink: OutboxSink;
    lock: RelayLock;
    signal: AbortSignal;
  }) {
    this.#store = opts.store;
    this.#sink = opts.sink;
    this.#lock = opts.lock;
    this.#signal = opts.signal;
    this.run = coalesce(() => this.#round());
  }

  /** Whether this replica holds the relay lock. */
  get relaying(): boolean {
    return this.#lock.held();
  }

  async #round(): Promise<number> {
    try {
      if (!(await this.#lock.acquire())) return RELAY_MS;
      while (true) {
        const batch = await this.#store.unpublished(BATCH);
        if (batch.length === 0) break;
        await this.#sink.send(batch.map(outboxMessage));
        await this.#store.markPublished(batch.map((c) => c.seq));
      }
      this.#delay = 200;
      return RELAY_MS;
    } catch (err) {
      // Stopping disconnects the sink under a round in flight: the changes stay in the
      // outbox for the next start, and shutting down is not a failure.
      if (this.#signal.aborted) {
        log.debug("config outbox relay stopped", { error: String(err) });
        return RELAY_MS;
      }
      log.warn("config outbox relay failed; retrying", {
        error: err instanceof Error ? err.message : String(err),
        retry_in_ms: this.#delay,
      });
      // Keep the lock: the next round checks it is still held before relaying.
      const next = this.#delay;
      this.#delay = Math.min(this.#delay * 2, 5_000);
      return next;
    }
  }

  /** Releases the lock and closes the sink. */
  async close(): Promise<void> {
    this.#lock.release();
    await this.#sink.close();
  }
}
