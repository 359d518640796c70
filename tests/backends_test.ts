/**
 * One connection test per backend: the embedded ones always, the real servers when the
 * local stack's variables are set (`eval "$(bash scripts/stack.sh env)"`).
 */
import assert from "node:assert/strict";
import { probeAll, redact } from "../lib/backend.ts";
import { openSqlite, sqliteProbe } from "../lib/backends/sqlite.ts";
import { createPostgres, postgresProbe } from "../lib/backends/postgres.ts";
import { createRedis, redisProbe, setIfNewer } from "../lib/backends/redis.ts";
import { CreateMode, ZkSession, zookeeperProbe } from "../lib/backends/zookeeper.ts";
import { createKafka, createProducer, kafkaProbe } from "../lib/backends/kafka.ts";
import { fetchClientFeatures, unleashProbe } from "../lib/backends/unleash.ts";
import { ensureFlagsFile, flagsFileProbe } from "../lib/backends/flags_file.ts";
import { loadSettings } from "../lib/settings.ts";
import { serverTest, stackSettings, startService, tempDir, waitFor } from "./_helpers.ts";
import { redisStub } from "./_redis_stub.ts";

const env = (name: string) => Deno.env.get(name) ?? "";
const suffix = () => `${Date.now()}-${crypto.randomUUID().slice(0, 8)}`;

Deno.test("sqlite: a row written is read back, and the probe reports up", async () => {
  const dir = tempDir();
  const db = openSqlite(dir);
  try {
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
    db.prepare("INSERT INTO t VALUES (?, ?)").run("a", "1");
    assert.deepEqual({ ...db.prepare("SELECT v FROM t WHERE k = ?").get("a") }, { v: "1" });
    assert.equal(
      (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode,
      "wal",
    );
    const [s] = await probeAll([sqliteProbe(db)]);
    assert.equal(s.status, "up");
  } finally {
    db.close();
  }
});

Deno.test("flags file: created empty when missing, and a broken file reports down", async () => {
  const dir = tempDir();
  const path = `${dir}/sub/flags.json`;
  ensureFlagsFile(path);
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)).features, []);
  assert.equal((await probeAll([flagsFileProbe(path)]))[0].status, "up");
  Deno.writeTextFileSync(path, "{not json");
  assert.equal((await probeAll([flagsFileProbe(path)]))[0].status, "down");
});

Deno.test("probeAll() reports a hung backend down after its timeout, credentials redacted", async () => {
  const [s] = await probeAll([{
    name: "storage",
    kind: "postgres",
    check: () => new Promise(() => {}),
  }], 50);
  assert.equal(s.status, "down");
  assert.match(s.error ?? "", /no answer within 50 ms/);
  assert.equal(redact("postgres://user:secret@db:5432/x"), "postgres://***@db:5432/x");
});

Deno.test("redis: a probe while the first connection opens waits for it instead of failing", async () => {
  // The connection is open but not ready for 500 ms. With no offline queue a PING sent then
  // failed at once ("Stream isn't writeable…"): /health said degraded for a healthy Redis.
  await using stub = redisStub({ slowStartMs: 500 });
  const r = createRedis(loadSettings({ REDIS_HOST: "127.0.0.1", REDIS_PORT: String(stub.port) }));
  try {
    r.connect().catch(() => {});
    const [s] = await probeAll([redisProbe(r)]);
    assert.equal(s.status, "up", s.error ?? "");
    assert.ok(stub.commands.includes("PING"));
  } finally {
    r.disconnect();
  }
});

Deno.test("redis: a probe of a Redis that refuses connections is down with the reason", async () => {
  const stub = redisStub();
  const port = String(stub.port);
  await stub[Symbol.asyncDispose]();
  const r = createRedis(loadSettings({ REDIS_HOST: "127.0.0.1", REDIS_PORT: port }));
  try {
    const [s] = await probeAll([redisProbe(r)]);
    assert.equal(s.status, "down");
    assert.match(s.error ?? "", /ECONNREFUSED/);
  } finally {
    r.disconnect();
  }
});

serverTest("postgres", ["DATABASE_URL"], "a row written is read back", async () => {
  const sql = createPostgres(env("TEST_DATABASE_URL") || env("DATABASE_URL"), { max: 2 });
  try {
    const table = `conn_test_${suffix().replace(/-/g, "_")}`;
    await sql`CREATE TABLE ${sql(table)} (k text PRIMARY KEY, v jsonb)`;
    await sql`INSERT INTO ${sql(table)} ${sql({ k: "a", v: sql.json({ n: 1 }) })}`;
    const rows = await sql`SELECT v FROM ${sql(table)} WHERE k = 'a'`;
    assert.deepEqual(rows[0].v, { n: 1 });
    await sql`DROP TABLE ${sql(table)}`;
    assert.equal((await probeAll([postgresProbe(sql)]))[0].status, "up");
  } finally {
    await sql.end({ timeout: 5 });
  }
});

serverTest("redis", ["REDIS_HOST"], "a value set is read back", async () => {
  const r = createRedis(loadSettings(Deno.env.toObject()), "conn-test");
  try {
    await r.connect();
    const key = `conn-test:${suffix()}`;
    await r.set(key, "v1", "EX", 60);
    assert.equal(await r.get(key), "v1");
    await r.del(key);
    assert.equal((await probeAll([redisProbe(r)]))[0].status, "up");
  } finally {
    r.disconnect();
  }
});

serverTest("redis", ["REDIS_HOST"], "setIfNewer keeps the newest of racing writers", async () => {
  const r = createRedis(loadSettings(Deno.env.toObject()), "conn-test");
  try {
    await r.connect();
    const key = `conn-test:newer:${suffix()}`;
    assert.equal(await setIfNewer(r, key, "b", "2026-11-26T10:00:02.000Z", 60), true);
    // A writer that fetched earlier but finishes later does not replace it.
    assert.equal(await setIfNewer(r, key, "a", "2026-11-26T10:00:01.000Z", 60), false);
    assert.equal(await r.get(key), "b");
    assert.equal(await setIfNewer(r, key, "c", "2026-11-26T10:00:03.000Z", 60), true);
    assert.equal(await r.get(key), "c");
    assert.ok((await r.ttl(key)) > 0 && (await r.ttl(`${key}:version`)) > 0, "both expire");
    await r.del(key, `${key}:version`);
  } finally {
    r.disconnect();
  }
});

serverTest(
  "zookeeper",
  ["ZOOKEEPER_HOSTS"],
  "a znode created is listed, and its ephemeral goes with the session",
  async () => {
    const opts = { sessionTimeoutMs: 10_000, connectTimeoutMs: 10_000 };
    const a = new ZkSession(env("ZOOKEEPER_HOSTS"), opts);
    const b = new ZkSession(env("ZOOKEEPER_HOSTS"), opts);
    try {
      await a.connect();
      await b.connect();
      const base = `/conn-test/${suffix()}`;
      await a.mkdirp(base);
      await a.create(`${base}/inst-1`, JSON.stringify({ id: "inst-1" }), CreateMode.EPHEMERAL);
      assert.deepEqual(await b.getChildren(base), ["inst-1"]);
      assert.deepEqual(JSON.parse((await b.getData(`${base}/inst-1`))!), { id: "inst-1" });
      assert.equal(await b.owner(`${base}/inst-1`), a.sessionId);
      assert.equal((await probeAll([zookeeperProbe(() => b)]))[0].status, "up");
      a.close();
      await waitFor(async () => (await b.getChildren(base)).length === 0, 5_000, "ephemeral gone");
      await b.remove(base);
    } finally {
      a.close();
      b.close();
    }
  },
);

serverTest("kafka", ["KAFKA_BOOTSTRAP_SERVERS"], "a message produced is consumed", async () => {
  const kafka = createKafka(env("KAFKA_BOOTSTRAP_SERVERS"), "conn-test");
  const topic = `conn-test-${suffix()}`;
  const admin = kafka.admin();
  const producer = createProducer(kafka);
  const consumer = kafka.consumer({ groupId: `conn-test-${suffix()}` });
  try {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: "k", value: "hello" }] });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = new Promise<string>((resolve) => {
      consumer.run({
        eachMessage: ({ message }) => Promise.resolve(resolve(String(message.value))),
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const value = await Promise.race([
      got,
      new Promise((_, rej) => timer = setTimeout(() => rej(new Error("no message")), 30_000)),
    ]).finally(() => clearTimeout(timer));
    assert.equal(value, "hello");
    assert.equal((await probeAll([kafkaProbe(admin)], 10_000))[0].status, "up");
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
    await admin.disconnect();
  }
});

serverTest(
  "unleash",
  ["UNLEASH_URL", "UNLEASH_CLIENT_TOKENS"],
  "client features are fetched with a backend token, then 304 with the ETag",
  async () => {
    const s = loadSettings(Deno.env.toObject());
    const token = s.UNLEASH_CLIENT_TOKENS[s.DEFAULT_ENVIRONMENT];
    assert.ok(token, `UNLEASH_CLIENT_TOKENS has a token for ${s.DEFAULT_ENVIRONMENT}`);
    const first = await fetchClientFeatures(s.UNLEASH_URL!, token);
    assert.equal(first.status, 200);
    if (first.status === 200) assert.ok(Array.isArray(first.body.features));
    if (first.etag) {
      const second = await fetchClientFeatures(s.UNLEASH_URL!, token, { etag: first.etag });
      assert.equal(second.status, 304);
    }
    assert.equal((await probeAll([unleashProbe(s.UNLEASH_URL!)]))[0].status, "up");
  },
);

serverTest(
  "stack",
  ["DATABASE_URL", "REDIS_HOST", "ZOOKEEPER_HOSTS", "KAFKA_BOOTSTRAP_SERVERS", "UNLEASH_URL"],
  "GET /health reports every real backend up",
  async () => {
    await using svc = await startService(stackSettings());
    const body = await waitFor(
      async () => {
        const b = await (await svc.app.request("/health")).json();
        const all = ["storage", "cache", "registry", "events", "flags"];
        return all.every((n) => b.backends[n]?.status === "up") ? b : null;
      },
      20_000,
      "all backends up",
    );
    assert.equal(body.status, "healthy");
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(body.backends).map(([k, v]) => [k, (v as { kind: string }).kind]),
      ),
      {
        storage: "postgres",
        cache: "redis",
        registry: "zookeeper",
        events: "kafka",
        flags: "unleash",
      },
    );
  },
);
