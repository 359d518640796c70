/**
 * Helpers for process-level tests against the real stack: a throw-away PostgreSQL database,
 * a throw-away Kafka topic, a Kafka consumer that collects a topic, and small HTTP helpers
 * for child services. Drivers only through the project's adapters.
 */
import { createPostgres } from "../lib/backends/postgres.ts";
import { createKafka } from "../lib/backends/kafka.ts";
import type { ServiceProcess } from "./_process.ts";
import { sleep, tempDir } from "./_helpers.ts";

export { sleep, tempDir };

/** 8 random hex characters (lower case: valid in database names and topics). */
export function rid(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** A base64 AES-256 key for CONFIG_ENCRYPTION_KEY. */
export function encryptionKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

export interface TempDatabase {
  name: string;
  /** DATABASE_URL pointing at the new database. */
  url: string;
  /** Drops the database, disconnecting whoever is still connected. */
  drop(): Promise<void>;
}

/** Creates `cs_t_<random>` through an admin connection to `DATABASE_URL`. */
export async function tempDatabase(): Promise<TempDatabase> {
  const base = Deno.env.get("DATABASE_URL");
  if (!base) throw new Error("DATABASE_URL is not set");
  const name = `cs_t_${rid()}`;
  const admin = createPostgres(base, { max: 1 });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    async drop() {
      // PostgreSQL may itself be restarting (outage tests): retry for a while.
      const end = Date.now() + 30_000;
      while (true) {
        const a = createPostgres(base, { max: 1 });
        try {
          await a.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
          return;
        } catch (err) {
          if (Date.now() > end) throw err;
          await sleep(500);
        } finally {
          await a.end({ timeout: 5 }).catch(() => {});
        }
      }
    },
  };
}

export interface TempTopic {
  topic: string;
  drop(): Promise<void>;
}

/** Creates `cs-t-<random>` with `partitions` partitions and waits for its leaders. */
export async function tempTopic(partitions = 3): Promise<TempTopic> {
  const bootstrap = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS");
  if (!bootstrap) throw new Error("KAFKA_BOOTSTRAP_SERVERS is not set");
  const topic = `cs-t-${rid()}`;
  const admin = createKafka(bootstrap, `test-admin-${rid()}`).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  return {
    topic,
    async drop() {
      const a = createKafka(bootstrap, `test-admin-${rid()}`).admin();
      try {
        await a.connect();
        await a.deleteTopics({ topics: [topic], timeout: 10_000 });
      } catch {
        /* best effort */
      } finally {
        await a.disconnect().catch(() => {});
      }
    },
  };
}

/** One message as a test consumer saw it. */
export interface Seen {
  partition: number;
  offset: string;
  key: string;
  value: Record<string, unknown>;
  headers: Record<string, string>;
  /** When the consumer saw it (ms since epoch). */
  at: number;
}

export interface TopicReader {
  /** Every message so far, in arrival order (per partition: in offset order). */
  messages: Seen[];
  /** Resolves with `messages` once `done(messages)` is true; rejects after `timeoutMs`. */
  until(done: (m: Seen[]) => boolean, timeoutMs: number, what?: string): Promise<Seen[]>;
  stop(): Promise<void>;
}

/** Reads `topic` from the beginning with a fresh consumer group. */
export async function readTopic(topic: string): Promise<TopicReader> {
  const bootstrap = Deno.env.get("KAFKA_BOOTSTRAP_SERVERS");
  if (!bootstrap) throw new Error("KAFKA_BOOTSTRAP_SERVERS is not set");
  const kafka = createKafka(bootstrap, `test-consumer-${rid()}`);
  const consumer = kafka.consumer({ groupId: `cs-t-group-${rid()}`, maxWaitTimeInMs: 500 });
  const messages: Seen[] = [];
  const dec = new TextDecoder();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? String(v[0]) : String(v);
      }
      messages.push({
        partition,
        offset: message.offset,
        key: message.key ? dec.decode(message.key) : "",
        value: message.value ? JSON.parse(dec.decode(message.value)) : {},
        headers,
        at: Date.now(),
      });
      return Promise.resolve();
    },
  });
  return {
    messages,
    async until(done, timeoutMs, what = "messages") {
      const end = Date.now() + timeoutMs;
      while (!done(messages)) {
        if (Date.now() > end) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what} ` +
              `(${messages.length} messages so far)`,
          );
        }
        await sleep(100);
      }
      return messages;
    },
    async stop() {
      await consumer.disconnect().catch(() => {});
    },
  };
}

/** A JSON request to a child service; the body is always consumed. */
export async function call(
  svc: ServiceProcess | string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const base = typeof svc === "string" ? svc : svc.url;
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls the child's `/health` until `backends[name].status` is `status`; returns the ms. */
export async function waitBackend(
  svc: ServiceProcess,
  name: string,
  status: string,
  timeoutMs: number,
): Promise<number> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const h = await call(svc, "GET", "/health");
      last = h.body;
      const b = (h.body as { backends?: Record<string, { status: string }> }).backends;
      if (b?.[name]?.status === status) return Date.now() - t0;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new Error(
    `/health did not report ${name} ${status} in ${timeoutMs} ms: ${JSON.stringify(last)}`,
  );
}

/** Stops a child for good (SIGKILL) and waits for it to be gone. */
export async function killService(svc: ServiceProcess | undefined): Promise<void> {
  if (!svc) return;
  svc.kill("SIGKILL");
  await svc.status;
}

/** Environment for a child on the real stack with only the backends a test asks for. */
export function stackChildEnv(over: Record<string, string>): Record<string, string> {
  return {
    DATA_DIR: tempDir(),
    SERVICE_INSTANCE_ID: `cs-t-${rid()}`,
    LOG_LEVEL: "WARNING",
    REDIS_HOST: "",
    ZOOKEEPER_HOSTS: "",
    KAFKA_BOOTSTRAP_SERVERS: "",
    UNLEASH_URL: "",
    ...over,
  };
}
