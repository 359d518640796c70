/** Kafka through `npm:kafkajs`. */
import { Kafka, logLevel, Partitioners } from "kafkajs";
import type { Admin, Producer } from "kafkajs";
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
