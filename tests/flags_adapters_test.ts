/**
 * Contract suites of the FlagActor's adapters: the flag cache and the flag event sink. Each
 * runs against the null implementation always and against the real server (Redis, Kafka)
 * when the local stack's variables are set (`eval "$(bash scripts/stack.sh env)"`).
 */
import assert from "node:assert/strict";
import { type FlagCache, NoFlagCache } from "../lib/flags/cache.ts";
import { type FlagEventSink, NoFlagEventSink } from "../lib/flags/event_sink.ts";
import type { FlagEvent, Snapshot } from "../lib/flags/store.ts";
import { RedisFlagCache } from "../lib/backends/flag_cache_redis.ts";
import { createKafkaFlagEventSink } from "../lib/backends/flag_events_kafka.ts";
import { createRedis } from "../lib/backends/redis.ts";
import { loadSettings } from "../lib/settings.ts";
import { serverTest } from "./_helpers.ts";
import { readTopic, rid, tempTopic } from "./_pg.ts";
import { redisStub } from "./_redis_stub.ts";

/** Registers one contract test: always for null implementations, with the server for real. */
type Register = (name: string, fn: () => Promise<void>) => void;

const embedded = (suite: string): Register => (name, fn) =>
  Deno.test({ name: `${suite}: ${name}`, fn });

function snapshot(environment: string, syncedAt: string, flag: string): Snapshot {
  const doc = JSON.stringify({
    version: 2,
    features: [{ name: flag, enabled: true, strategies: [{ name: "default" }] }],
    segments: [],
  });
  return { environment, hash: `h-${flag}`, etag: `"${flag}"`, doc, synced_at: syncedAt };
}

// ---------------------------------------------------------------------------------------
// FlagCache

interface CacheUnderTest extends AsyncDisposable {
  cache: FlagCache;
  /** Whether the cache keeps what it is given (false: the null cache). */
  keeps: boolean;
}

function cacheContract(register: Register, open: () => Promise<CacheUnderTest>): void {
  register("get() of an environment never written answers null", async () => {
    await using c = await open();
    assert.equal(await c.cache.get("development"), null);
  });

  register("put() keeps the newest fetch of racing writers, not the last write", async () => {
    await using c = await open();
    const b = snapshot("development", "2026-11-26T10:00:02.000Z", "b");
    assert.equal(await c.cache.put(b), c.keeps);
    // A writer that fetched earlier but finishes later does not replace it.
    const a = snapshot("development", "2026-11-26T10:00:01.000Z", "a");
    assert.equal(await c.cache.put(a), false);
    assert.deepEqual(await c.cache.get("development"), c.keeps ? b : null);
    const d = snapshot("development", "2026-11-26T10:00:03.000Z", "d");
    assert.equal(await c.cache.put(d), c.keeps);
    assert.deepEqual(await c.cache.get("development"), c.keeps ? d : null);
  });

  register("environments are kept apart", async () => {
    await using c = await open();
    await c.cache.put(snapshot("development", "2026-11-26T10:00:00.000Z", "dev-only"));
    assert.equal(await c.cache.get("production"), null);
  });

  register("close() may be called twice", async () => {
    const c = await open();
    await c.cache.close();
    await c.cache.close();
    await c[Symbol.asyncDispose]();
  });
}

cacheContract(embedded("NoFlagCache"), () =>
  Promise.resolve({
    cache: new NoFlagCache(),
    keeps: false,
    [Symbol.asyncDispose]: () => Promise.resolve(),
  }));

cacheContract(
  (name, fn) => serverTest("RedisFlagCache", ["REDIS_HOST"], name, fn),
  () => {
    const redis = createRedis(loadSettings(Deno.env.toObject()), "flag-cache-test");
    const prefix = `cs-test:flags:${rid()}`;
    const cache = new RedisFlagCache(redis, { prefix, ttlSeconds: 60 });
    return Promise.resolve({
      cache,
      keeps: true,
      async [Symbol.asyncDispose]() {
        if (redis.status === "ready") {
          const keys = await redis.keys(`${prefix}:*`);
          if (keys.length > 0) await redis.del(...keys);
        }
        await cache.close();
      },
    });
  },
);

Deno.test("RedisFlagCache: a Redis that refuses the commands makes put() and get() throw", async () => {
  // The stub answers the connection and PING, and an error to GET and EVAL: the FlagActor
  // catches these and goes on from the store and the source.
  await using stub = redisStub();
  const redis = createRedis(
    loadSettings({ REDIS_HOST: "127.0.0.1", REDIS_PORT: String(stub.port) }),
    "flag-cache-test",
  );
  const cache = new RedisFlagCache(redis, { prefix: "cs-test:flags:stub", ttlSeconds: 60 });
  try {
    await assert.rejects(cache.get("development"));
    await assert.rejects(cache.put(snapshot("development", "2026-11-26T10:00:00.000Z", "x")));
    assert.ok(
      stub.commands.includes("GET") && stub.commands.includes("EVAL"),
      stub.commands.join(),
    );
  } finally {
    await cache.close();
  }
});

// ---------------------------------------------------------------------------------------
// FlagEventSink

interface SinkUnderTest extends AsyncDisposable {
  sink: FlagEventSink;
  /** What reached the bus so far as `[key, event]`, or null when nothing can be observed. */
  delivered: ((count: number) => Promise<[string, FlagEvent][]>) | null;
}

function event(flag: string, environment: string, change: string): FlagEvent {
  return { flag, environment, change, at: new Date().toISOString() };
}

function sinkContract(register: Register, open: () => Promise<SinkUnderTest>): void {
  register("send() of no events resolves", async () => {
    await using s = await open();
    await s.sink.send([]);
  });

  register("send() resolves once the events are accepted, delivered in order by key", async () => {
    await using s = await open();
    const events = [
      event("a", "development", "created"),
      event("b", "production", "disabled"),
      event("a", "development", "updated"),
    ];
    await s.sink.send(events.slice(0, 2));
    await s.sink.send(events.slice(2));
    if (!s.delivered) return;
    const got = await s.delivered(events.length);
    assert.deepEqual(got, events.map((e) => [`${e.environment}:${e.flag}`, e]));
  });

  register("close() may be called twice", async () => {
    const s = await open();
    await s.sink.close();
    await s.sink.close();
    await s[Symbol.asyncDispose]();
  });
}

sinkContract(embedded("NoFlagEventSink"), () =>
  Promise.resolve({
    sink: new NoFlagEventSink(),
    delivered: null,
    [Symbol.asyncDispose]: () => Promise.resolve(),
  }));

sinkContract(
  (name, fn) => serverTest("KafkaFlagEventSink", ["KAFKA_BOOTSTRAP_SERVERS"], name, fn),
  async () => {
    // One partition: the order asserted is the topic's, not one partition's among several.
    const topic = await tempTopic(1);
    const sink = createKafkaFlagEventSink(
      Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!,
      topic.topic,
    );
    let reader: Awaited<ReturnType<typeof readTopic>> | undefined;
    return {
      sink,
      async delivered(count) {
        reader ??= await readTopic(topic.topic);
        const seen = await reader.until((m) => m.length >= count, 30_000, `${count} events`);
        return seen.map((m) => [m.key, m.value as unknown as FlagEvent]);
      },
      async [Symbol.asyncDispose]() {
        await reader?.stop();
        await sink.close();
        await topic.drop();
      },
    };
  },
);
