/** Flag-change events to a Kafka topic through an idempotent producer. */
import type { Producer } from "kafkajs";
import type { FlagEventSink } from "../flags/event_sink.ts";
import type { FlagEvent } from "../flags/store.ts";
import { createKafka, createProducer } from "./kafka.ts";

/**
 * {@link FlagEventSink} over a producer, which it owns. It connects at construction and, while
 * that has not succeeded, again at each send: Kafka may be away when the service starts.
 */
export class KafkaFlagEventSink implements FlagEventSink {
  readonly #producer: Producer;
  readonly #topic: string;
  #connecting: Promise<void> | null = null;
  #closed = false;

  constructor(producer: Producer, topic: string) {
    this.#producer = producer;
    this.#topic = topic;
    // The outbox relay retries, so a failure here only waits for the next send.
    this.#connect().catch(() => {});
  }

  async send(events: readonly FlagEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.#closed) throw new Error("Kafka flag event sink is closed");
    await this.#connect();
    await this.#producer.send({
      topic: this.#topic,
      acks: -1,
      messages: events.map((e) => ({
        key: `${e.environment}:${e.flag}`,
        value: JSON.stringify(e),
      })),
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#producer.disconnect().catch(() => {});
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#producer.connect().catch((err) => {
      this.#connecting = null;
      throw err;
    });
    return this.#connecting;
  }
}

/** The FlagActor's sink: `bootstrap` is `KAFKA_BOOTSTRAP_SERVERS`, `topic` the events topic. */
export function createKafkaFlagEventSink(bootstrap: string, topic: string): KafkaFlagEventSink {
  return new KafkaFlagEventSink(
    createProducer(createKafka(bootstrap, "config-service-flags")),
    topic,
  );
}
