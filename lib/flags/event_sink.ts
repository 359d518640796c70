/**
 * Where flag-change events go once the outbox hands them over: Kafka when configured
 * (lib/backends/flag_events_kafka.ts), else nowhere, the log line written at sync being the
 * record.
 */
import type { FlagEvent } from "./store.ts";

export interface FlagEventSink {
  /**
   * Publishes `events` in order, keyed `<environment>:<flag>`; resolves once the broker
   * acknowledged all of them (the outbox deletes them then).
   * @throws {Error} when they were not all acknowledged: the outbox keeps them and retries.
   */
  send(events: readonly FlagEvent[]): Promise<void>;
  /** Closes the connection; idempotent. */
  close(): Promise<void>;
}

/** No event bus: events are accepted and dropped (the sync's log line is the record). */
export class NoFlagEventSink implements FlagEventSink {
  send(_events: readonly FlagEvent[]): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
