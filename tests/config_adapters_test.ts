/**
 * Contract tests of the ConfigActor's adapters: each suite runs against the embedded (or
 * null) implementation always, and against the real server when its variable is set
 * (`eval "$(bash scripts/stack.sh env)"`).
 */
import assert from "node:assert/strict";
import {
  type ChangeSource,
  type InvalidationChannel,
  type L2Cache,
  LocalRelayLock,
  MemoryL2Cache,
  MemoryOutboxSink,
  NullInvalidationChannel,
  NullL2Cache,
  type OutboxMessage,
  type OutboxSink,
  type RelayLock,
} from "../lib/config/adapters.ts";
import type { StoredChange, StoredEntry } from "../lib/config/model.ts";
import { createRedis } from "../lib/backends/redis.ts";
import { createPostgres } from "../lib/backends/postgres.ts";
import { createKafka, createProducer } from "../lib/backends/kafka.ts";
import { RedisInvalidationChannel, RedisL2Cache } from "../lib/config/redis_adapters.ts";
import { PostgresRelayLock } from "../lib/config/postgres_relay_lock.ts";
import { KafkaOutboxSink } from "../lib/config/kafka_outbox.ts";
import { serverTest, stackSettings, waitFor } from "./_helpers.ts";
import { readTopic, rid, tempTopic } from "./_pg.ts";

const id = (key: string) => ({ environment: "development", service: "svc", key });

function entry(key: string, version: number, value = version): StoredEntry {
  return {
    ...id(key),
    value: JSON.stringify(value),
    secret: false,
    description: null,
    version,
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:00:00.000Z",
    updated_by: "test",
  };
}

function change(seq: number, key: string, version: number): StoredChange {
  return {
    ...entry(key, version),
    seq,
    event_id: crypto.randomUUID(),
    type: version === 1 ? "created" : "updated",
  };
}

/** A change log of `changes` that records where each read started. */
function source(changes: StoredChange[]): ChangeSource & { afters: number[] } {
  const afters: number[] = [];
  const fn = (after: number, limit: number) => {
    afters.push(after);
    return Promise.resolve(changes.filter((c) => c.seq > after).slice(0, limit));
  };
  return Object.assign(fn, { afters });
}

// --- L2Cache ---------------------------------------------------------------------------------

interface L2Fixture extends AsyncDisposable {
  l2: L2Cache;
}

/** The L2 contract, registered as `register(name, fn)` tests. */
function l2Contract(
  register: (name: string, fn: () => Promise<void>) => void,
  make: () => Promise<L2Fixture>,
) {
  register("L2Cache misses while dirty, and serves what was put once repaired", async () => {
    await using f = await make();
    assert.equal(f.l2.dirty, true, "dirty until a repair ran");
    assert.equal(await f.l2.putIfNewer(id("a"), 1, entry("a", 1)), true);
    assert.equal(await f.l2.get(id("a")), undefined, "not read while dirty");
    await f.l2.repair(source([]));
    assert.equal(f.l2.dirty, false);
    assert.deepEqual(await f.l2.get(id("a")), entry("a", 1));
    assert.equal(await f.l2.get(id("unknown")), undefined);
  });

  register("L2Cache.putIfNewer() keeps the newest version, and an absence too", async () => {
    await using f = await make();
    await f.l2.repair(source([]));
    await f.l2.putIfNewer(id("a"), 2, entry("a", 2));
    await f.l2.putIfNewer(id("a"), 1, entry("a", 1));
    assert.deepEqual(await f.l2.get(id("a")), entry("a", 2), "an older version never wins");
    await f.l2.putIfNewer(id("a"), 3, null);
    assert.equal(await f.l2.get(id("a")), null, "a newer absence is kept as null");
  });

  register(
    "L2Cache.repair() replays the change log from the watermark advance() moved",
    async () => {
      await using f = await make();
      const log = [change(1, "a", 1), change(2, "b", 1)];
      const first = source(log);
      await f.l2.repair(first);
      assert.deepEqual(first.afters, [0], "a new cache replays from the start");
      assert.deepEqual(await f.l2.get(id("b")), entry("b", 1));
      // The tail pushed change 3 in full, then lost change 4's put: dirty again.
      f.l2.advance(2, 3, [Promise.resolve(true)]);
      f.l2.advance(3, 4, [Promise.resolve(false)]);
      await waitFor(() => f.l2.dirty, 2_000, "a lost put to make the cache dirty");
      assert.equal(await f.l2.get(id("b")), undefined, "not read while dirty");
      const second = source([...log, change(3, "c", 1), change(4, "a", 2)]);
      await f.l2.repair(second);
      assert.equal(second.afters[0], 3, "replayed from the last change pushed in full");
      assert.equal(f.l2.dirty, false);
      assert.deepEqual(await f.l2.get(id("a")), entry("a", 2));
    },
  );
}

l2Contract(
  (name, fn) => Deno.test(`memory: ${name}`, fn),
  () => {
    const l2 = new MemoryL2Cache();
    return Promise.resolve({ l2, [Symbol.asyncDispose]: () => l2.close() });
  },
);

l2Contract(
  (name, fn) => serverTest("redis", ["REDIS_HOST"], name, fn),
  async () => {
    const r = createRedis(stackSettings());
    const prefix = `cs-test:${rid()}`;
    const l2 = new RedisL2Cache(r, prefix);
    await r.connect();
    return {
      l2,
      async [Symbol.asyncDispose]() {
        const keys = await r.keys(`${prefix}:*`);
        if (keys.length > 0) await r.del(...keys);
        await l2.close();
      },
    };
  },
);

Deno.test("NullL2Cache never holds anything and is never dirty", async () => {
  const l2: L2Cache = new NullL2Cache();
  assert.equal(await l2.putIfNewer(id("a"), 1, entry("a", 1)), false);
  await l2.repair(source([change(1, "a", 1)]));
  assert.equal(await l2.get(id("a")), undefined);
  assert.equal(l2.dirty, false);
});

serverTest(
  "redis",
  ["REDIS_HOST"],
  "RedisL2Cache turns dirty when its connection drops",
  async () => {
    const r = createRedis(stackSettings());
    const l2 = new RedisL2Cache(r, `cs-test:${rid()}`);
    await r.connect();
    try {
      await l2.repair(source([]));
      assert.equal(l2.dirty, false);
      r.disconnect(true);
      await waitFor(() => l2.dirty, 2_000, "dirty after the connection closed");
      // On reconnect it repairs from the change log it was last given.
      await waitFor(() => !l2.dirty, 5_000, "repaired after reconnecting");
    } finally {
      await l2.close();
    }
  },
);

// --- InvalidationChannel ---------------------------------------------------------------------

Deno.test("NullInvalidationChannel publishes nowhere and never calls its listener", async () => {
  const ch: InvalidationChannel = new NullInvalidationChannel();
  let calls = 0;
  ch.listen({ message: () => calls++, reconnected: () => calls++ });
  ch.publish(1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(calls, 0);
  await ch.close();
});

serverTest(
  "redis",
  ["REDIS_HOST"],
  "RedisInvalidationChannel delivers one replica's publish to another",
  async () => {
    const s = stackSettings();
    const pubA = createRedis(s);
    const pubB = createRedis(s);
    await Promise.all([pubA.connect(), pubB.connect()]);
    const a = new RedisInvalidationChannel(pubA, createRedis(s, "test-sub-a"), "a");
    const b = new RedisInvalidationChannel(pubB, createRedis(s, "test-sub-b"), "b");
    try {
      let reconnected = 0;
      let messages = 0;
      b.listen({ message: () => messages++, reconnected: () => reconnected++ });
      await waitFor(() => reconnected > 0, 5_000, "the listener to connect");
      // SUBSCRIBE is sent after `reconnected`: publish until one arrives.
      await waitFor(
        () => {
          a.publish(7);
          return messages > 0;
        },
        5_000,
        "a message from the other replica",
      );
    } finally {
      await Promise.all([a.close(), b.close(), pubA.quit(), pubB.quit()]);
    }
  },
);

// --- RelayLock -------------------------------------------------------------------------------

function relayLockContract(
  register: (name: string, fn: () => Promise<void>) => void,
  make: () => Promise<{ lock: RelayLock; done(): Promise<void> }>,
) {
  register("RelayLock is held after acquire() until release()", async () => {
    const { lock, done } = await make();
    try {
      assert.equal(lock.held(), false, "not held before acquire()");
      assert.equal(await lock.acquire(), true);
      assert.equal(lock.held(), true);
      assert.equal(await lock.acquire(), true, "acquire() again confirms it");
      lock.release();
      assert.equal(lock.held(), false);
      assert.equal(await lock.acquire(), true, "taken again after release()");
      lock.release();
    } finally {
      await done();
    }
  });
}

relayLockContract(
  (name, fn) => Deno.test(`local: ${name}`, fn),
  () => Promise.resolve({ lock: new LocalRelayLock(), done: () => Promise.resolve() }),
);

/** A lock id no service uses, so tests never contend with a running replica. */
const testLockId = () => 900_000_000 + Math.floor(Math.random() * 1_000_000);

relayLockContract(
  (name, fn) => serverTest("postgres", ["DATABASE_URL"], name, fn),
  () => {
    const sql = createPostgres(Deno.env.get("DATABASE_URL")!, { max: 2 });
    return Promise.resolve({
      lock: new PostgresRelayLock(sql, { id: testLockId() }),
      done: () => sql.end({ timeout: 5 }),
    });
  },
);

serverTest(
  "postgres",
  ["DATABASE_URL"],
  "PostgresRelayLock is held by one replica at a time, and passes on release",
  async () => {
    const lockId = testLockId();
    const sqlA = createPostgres(Deno.env.get("DATABASE_URL")!, { max: 2 });
    const sqlB = createPostgres(Deno.env.get("DATABASE_URL")!, { max: 2 });
    const a = new PostgresRelayLock(sqlA, { id: lockId });
    const b = new PostgresRelayLock(sqlB, { id: lockId });
    try {
      assert.equal(await a.acquire(), true);
      assert.equal(await b.acquire(), false, "the other replica does not get it");
      assert.equal(b.held(), false);
      a.release();
      await waitFor(() => b.acquire(), 5_000, "the lock to pass on");
      assert.equal(await a.acquire(), false);
      b.release();
    } finally {
      await Promise.all([sqlA.end({ timeout: 5 }), sqlB.end({ timeout: 5 })]);
    }
  },
);

// --- OutboxSink ------------------------------------------------------------------------------

const messages = (): OutboxMessage[] => [
  { key: "development/svc/a", value: JSON.stringify({ n: 1 }), eventId: crypto.randomUUID() },
  { key: "development/svc/a", value: JSON.stringify({ n: 2 }), eventId: crypto.randomUUID() },
];

function outboxContract(
  register: (name: string, fn: () => Promise<void>) => void,
  make: () => Promise<{
    sink: OutboxSink;
    /** What was delivered, once `n` messages were. */
    delivered(n: number): Promise<OutboxMessage[]>;
    done(): Promise<void>;
  }>,
) {
  register("OutboxSink delivers messages in order with key, value and event id", async () => {
    const { sink, delivered, done } = await make();
    try {
      const sent = messages();
      await sink.send(sent.slice(0, 1));
      await sink.send(sent.slice(1));
      assert.deepEqual(await delivered(2), sent);
    } finally {
      await sink.close();
      await done();
    }
  });
}

outboxContract(
  (name, fn) => Deno.test(`memory: ${name}`, fn),
  () => {
    const sink = new MemoryOutboxSink();
    return Promise.resolve({
      sink,
      delivered: () => Promise.resolve(sink.sent),
      done: () => Promise.resolve(),
    });
  },
);

outboxContract(
  (name, fn) => serverTest("kafka", ["KAFKA_BOOTSTRAP_SERVERS"], name, fn),
  async () => {
    const t = await tempTopic(1);
    const kafka = createKafka(Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!, `test-${rid()}`);
    const reader = await readTopic(t.topic);
    return {
      sink: new KafkaOutboxSink(createProducer(kafka), t.topic),
      delivered: async (n) =>
        (await reader.until((m) => m.length >= n, 15_000)).map((m) => ({
          key: m.key,
          value: JSON.stringify(m.value),
          eventId: m.headers.event_id,
        })),
      async done() {
        await reader.stop();
        await t.drop();
      },
    };
  },
);

Deno.test("MemoryOutboxSink that is failing throws and keeps nothing", async () => {
  const sink = new MemoryOutboxSink();
  sink.failing = true;
  await assert.rejects(sink.send(messages()), /unavailable/);
  assert.deepEqual(sink.sent, []);
});
