/** The outbox sink in Kafka. Loaded only when `KAFKA_BOOTSTRAP_SERVERS` is set. */
import type { Producer } from "../backends/kafka.ts";
import type { OutboxMessage, OutboxSink } from "./adapters.ts";

/**
 * Sends outbox events to `topic` through an idempotent producer (`createProducer`), with
 * `acks: -1`: a send resolves once every in-sync replica has the batch. The message key is
 * the entry's `environment/service/key` (one partition per entry keeps its events in order)
 * and the `event_id` header lets consumers drop redeliveries.
 */
export class KafkaOutboxSink implements OutboxSink {
  readonly #producer: Producer;
  readonly #topic: string;
  #connected = false;

  constructor(producer: Producer, topic: string) {
    this.#producer = producer;
    this.#topic = topic;
  }

  async send(messages: OutboxMessage[]): Promise<void> {
    if (!this.#connected) {
      await this.#producer.connect();
      this.#connected = true;
    }
    await this.#producer.send({
      topic: this.#topic,
      acks: -1,
      messages: messages.map((m) => ({
        key: m.key,
        value: m.value,
        headers: { event_id: m.eventId },
      })),
    });
  }

  async close(): Promise<void> {
    if (this.#connected) await this.#producer.disconnect();
  }
}
