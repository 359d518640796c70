/** Kafka through `npm:kafkajs`. */
import { Kafka, logLevel, Partitioners } from "kafkajs";
import type { Admin, Kafka as KafkaClient, Producer } from "kafkajs";
import type { BackendProbe } from "../backend.ts";
import { log } from "../log.ts";

export type { Admin, Producer };

/** A client for `bootstrap` (comma-separated host:port) that logs through our logger. */
export function createKafka(bootstrap: string, clientId = "config-service"): Kafka {
  return new Kafka({
    clientId,
    brokers: bootstrap.split(",").map((s) => s.trim()).filter(Boolean),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log: entry }) => {
      const { message, ...rest } = entry;
      const fields = { namespace, broker: rest.broker, error: rest.error };
      if (level <= logLevel.ERROR) log.warn(`kafka: ${message}`, fields);
      else log.debug(`kafka: ${message}`, fields);
    },
  });
}

/**
 * An idempotent producer: the broker drops the duplicates its own retries would make, and
 * `acks: -1` on send waits for the in-sync replicas.
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

export function kafkaProbe(admin: Admin): BackendProbe {
  let connected = false;
  return {
    name: "events",
    kind: "kafka",
    async check() {
      if (!connected) {
        await admin.connect();
        connected = true;
      }
      await admin.describeCluster();
    },
  };
}

/**
 * Publishes events in order with retries while Kafka is away, from a bounded in-memory
 * queue (oldest dropped, and logged, past `maxQueued`). For events that are
 * notifications — registry and flag changes — not for configuration changes, whose
 * delivery the transactional outbox guarantees.
 */
export class EventPublisher {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #maxQueued: number;
  #queue: { key: string; value: string }[] = [];
  #connected = false;
  #running = false;
  #delay = 200;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  dropped = 0;

  constructor(kafka: KafkaClient, topic: string, maxQueued = 10_000) {
    this.#producer = createProducer(kafka);
    this.#topic = topic;
    this.#maxQueued = maxQueued;
  }

  get queued(): number {
    return this.#queue.length;
  }

  publish(key: string, event: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#queue.push({ key, value: JSON.stringify(event) });
    if (this.#queue.length > this.#maxQueued) {
      this.#queue.shift();
      if (this.dropped++ % 1000 === 0) {
        log.warn("event queue full; dropping the oldest", { topic: this.#topic });
      }
    }
    void this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      if (!this.#connected) {
        await this.#producer.connect();
        this.#connected = true;
      }
      while (this.#queue.length > 0) {
        const batch = this.#queue.slice(0, 500);
        await this.#producer.send({ topic: this.#topic, acks: -1, messages: batch });
        this.#queue.splice(0, batch.length);
      }
      this.#delay = 200;
    } catch (err) {
      log.warn("event publish failed; retrying", {
        topic: this.#topic,
        error: err instanceof Error ? err.message : String(err),
        retry_in_ms: this.#delay,
      });
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.#flush(), this.#delay);
      this.#delay = Math.min(this.#delay * 2, 5_000);
    } finally {
      this.#running = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#connected) await this.#producer.disconnect().catch(() => {});
  }
}
