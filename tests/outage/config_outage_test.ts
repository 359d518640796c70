/**
 * Configuration entries while a real backend is down: Kafka stopped under writes (the outbox
 * catches up), PostgreSQL stopped under reads and writes (stale cached reads, 503 writes,
 * recovery without a restart). These stop and start servers through `scripts/stack.sh`, so
 * they run serially after the parallel suite; every stopped server is started again in a
 * `finally`.
 */
import assert from "node:assert/strict";
import { serverTest, stack } from "../_helpers.ts";
import { type ServiceProcess, spawnService } from "../_process.ts";
import {
  call,
  killService,
  readTopic,
  rid,
  type Seen,
  sleep,
  stackChildEnv,
  tempDatabase,
  tempTopic,
  waitBackend,
} from "../_pg.ts";
import { createPostgres } from "../../lib/backends/postgres.ts";

const ENV = "development";
const CONFIG = "/api/v1/config";

serverTest(
  "config outage",
  ["DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"],
  "Kafka stopped during 100 writes: all 100 events arrive after it returns",
  async () => {
    const [db, topic] = await Promise.all([tempDatabase(), tempTopic(3)]);
    let svc: ServiceProcess | undefined;
    let reader: Awaited<ReturnType<typeof readTopic>> | undefined;
    let kafkaStopped = false;
    try {
      svc = await spawnService(
        stackChildEnv({
          DATABASE_URL: db.url,
          KAFKA_BOOTSTRAP_SERVERS: Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!,
          KAFKA_TOPIC_CONFIG_UPDATES: topic.topic,
        }),
        { keepBackends: true },
      );
      await waitBackend(svc, "events", "up", 15_000);

      kafkaStopped = true;
      await stack("stop", "kafka");

      // 50 creates, then an update of each: every one must be acknowledged.
      const writes: { key: string; version: number }[] = [];
      let slowest = 0;
      for (let n = 0; n < 100; n++) {
        const key = `k${n % 50}`;
        const t = performance.now();
        const res: Awaited<ReturnType<typeof call>> = n < 50
          ? await call(svc, "POST", CONFIG, { key, value: { n }, environment: ENV })
          : await call(svc, "PUT", `${CONFIG}/${key}`, { value: { n }, environment: ENV });
        slowest = Math.max(slowest, performance.now() - t);
        assert.equal(res.status, n < 50 ? 201 : 200, `write ${n}: ${JSON.stringify(res.body)}`);
        writes.push({ key, version: (res.body as { version: number }).version });
      }
      const downAfter = await waitBackend(svc, "events", "down", 15_000);

      const t0 = Date.now();
      await stack("start", "kafka");
      kafkaStopped = false;
      const restarted = Date.now();
      // The relay's own catch-up, read from the outbox (the consumer below adds its group join).
      const outbox = createPostgres(db.url, { max: 1 });
      let drained = -1;
      const drain = (async () => {
        try {
          while (Date.now() - restarted < 60_000) {
            const [r] = await outbox`SELECT COUNT(*) AS n FROM config_changes WHERE NOT published`;
            if (Number(r.n) === 0) return drained = Date.now() - restarted;
            await sleep(100);
          }
        } finally {
          await outbox.end({ timeout: 5 });
        }
      })();
      reader = await readTopic(topic.topic);
      const distinct = (m: Seen[]) => new Set(m.map((x) => x.value.event_id)).size;
      const msgs = await reader.until((m) => distinct(m) >= 100, 60_000, "100 distinct events");
      const caughtUp = Math.max(...msgs.map((m) => m.at)) - restarted;
      await drain;
      console.log(
        `kafka outage: 100 writes acknowledged while Kafka was down (slowest ` +
          `${slowest.toFixed(0)} ms); /health reported events down ${downAfter} ms after the ` +
          `writes; kafka start took ${restarted - t0} ms; outbox drained ${drained} ms and all ` +
          `100 events consumed ` +
          `${caughtUp} ms after it was ready (${msgs.length} messages, ${distinct(msgs)} distinct)`,
      );

      // The events are the change log's, one per write, per key in version order.
      const sql = createPostgres(db.url, { max: 1 });
      try {
        const rows = await sql`SELECT event_id FROM config_changes`;
        assert.deepEqual(
          new Set(msgs.map((m) => m.value.event_id)),
          new Set(rows.map((r) => r.event_id)),
          "the consumed event ids are the change log's",
        );
      } finally {
        await sql.end({ timeout: 5 });
      }
      const seen = new Set<unknown>();
      const versions = new Map<string, number[]>();
      for (const m of msgs) {
        if (seen.has(m.value.event_id)) continue;
        seen.add(m.value.event_id);
        const k = m.value.key as string;
        versions.set(k, [...versions.get(k) ?? [], m.value.version as number]);
        assert.ok(m.key.startsWith(`${ENV}/`) && m.key.endsWith(`/${k}`), m.key);
      }
      for (let k = 0; k < 50; k++) {
        const key = `k${k}`;
        assert.deepEqual(
          versions.get(key),
          writes.filter((w) => w.key === key).map((w) => w.version),
          `${key}: its two events, in order`,
        );
      }
    } finally {
      if (kafkaStopped) await stack("start", "kafka");
      await reader?.stop();
      await killService(svc);
      await Promise.all([db.drop(), topic.drop()]);
    }
  },
);

serverTest(
  "config outage",
  ["DATABASE_URL"],
  "PostgreSQL down: cached reads answer 200 with X-Config-Stale, writes 503, recovery " +
    "without restart",
  async () => {
    const db = await tempDatabase();
    let svc: ServiceProcess | undefined;
    let other: ServiceProcess | undefined;
    let pgStopped = false;
    try {
      const env = { DATABASE_URL: db.url };
      [svc, other] = await Promise.all([
        spawnService(stackChildEnv(env), { keepBackends: true }),
        spawnService(stackChildEnv(env), { keepBackends: true }),
      ]);
      const cached = `cached.${rid()}`;
      const elsewhere = `elsewhere.${rid()}`;
      const value = { url: "/models/asr", n: 1 };
      assert.equal(
        (await call(svc, "POST", CONFIG, { key: cached, value, environment: ENV }))
          .status,
        201,
      );
      const first = await call(svc, "GET", `${CONFIG}/${cached}?environment=${ENV}`);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get("x-config-stale"), null);
      // Written through another process: in the store, never in this process's cache.
      assert.equal(
        (await call(other, "POST", CONFIG, { key: elsewhere, value: 2, environment: ENV }))
          .status,
        201,
      );
      await killService(other);
      other = undefined;
      await waitBackend(svc, "storage", "up", 10_000);

      pgStopped = true;
      await stack("stop", "postgres");
      const downAfter = await waitBackend(svc, "storage", "down", 10_000);
      const health = await call(svc, "GET", "/health");
      assert.equal(health.status, 503, "unhealthy without storage");

      const stale = await call(svc, "GET", `${CONFIG}/${cached}?environment=${ENV}`);
      assert.equal(stale.status, 200, JSON.stringify(stale.body));
      assert.equal(stale.headers.get("x-config-stale"), "true");
      assert.deepEqual((stale.body as { value: unknown }).value, value);
      assert.equal(stale.headers.get("etag"), first.headers.get("etag"));

      // Each of these must be refused promptly with a 503 problem+json. They are checked
      // without stopping the test, so that recovery is exercised (and reported) too.
      const problems: string[] = [];
      const refused: string[] = [];
      const expect503 = async (what: string, method: string, path: string, body?: unknown) => {
        const t1 = performance.now();
        const r = await call(svc!, method, path, body);
        const ms = performance.now() - t1;
        refused.push(`${what} ${r.status} in ${ms.toFixed(0)} ms`);
        if (
          r.status !== 503 ||
          !/^application\/problem\+json/.test(r.headers.get("content-type") ?? "")
        ) {
          problems.push(
            `${what} while PostgreSQL is down answered ${r.status} after ${ms.toFixed(0)} ms ` +
              `(want a 503 problem+json): ${JSON.stringify(r.body)}`,
          );
        }
        return r.status;
      };
      const createStatus = await expect503("POST (create)", "POST", CONFIG, {
        key: "during-outage",
        value: 1,
        environment: ENV,
      });
      await expect503("PUT of the cached key", "PUT", `${CONFIG}/${cached}`, {
        value: 3,
        environment: ENV,
      });
      await expect503(
        "GET of a key written elsewhere (not cached here)",
        "GET",
        `${CONFIG}/${elsewhere}?environment=${ENV}`,
      );
      await expect503(
        "GET of a never-written key",
        "GET",
        `${CONFIG}/never-written.${rid()}?environment=${ENV}`,
      );

      await stack("start", "postgres");
      pgStopped = false;
      const t0 = Date.now();
      let recovered = -1;
      const meanwhile: number[] = [];
      while (Date.now() - t0 < 15_000) {
        const r = await call(svc, "PUT", `${CONFIG}/${cached}`, { value: 4, environment: ENV });
        if (r.status === 200) {
          recovered = Date.now() - t0;
          break;
        }
        meanwhile.push(r.status);
        await sleep(200);
      }
      assert.ok(
        recovered >= 0,
        `writes succeed again within 15 s of PostgreSQL's return (got ${meanwhile.join(", ")})`,
      );
      const fresh = await call(svc, "GET", `${CONFIG}/${cached}?environment=${ENV}`);
      assert.equal(fresh.status, 200);
      assert.equal((fresh.body as { value: unknown }).value, 4);
      // The flag follows the 5-second storage probe, so it may outlive the outage a little.
      const t2 = Date.now();
      while (true) {
        const r = await call(svc, "GET", `${CONFIG}/${cached}?environment=${ENV}`);
        if (r.headers.get("x-config-stale") === null) break;
        assert.ok(Date.now() - t2 < 10_000, "X-Config-Stale is gone within 10 s of recovery");
        await sleep(200);
      }
      const staleLag = Date.now() - t2;
      const again = await call(svc, "GET", `${CONFIG}/${elsewhere}?environment=${ENV}`);
      assert.equal(again.status, 200);
      assert.equal((again.body as { value: unknown }).value, 2);
      const lostWrite = await call(svc, "GET", `${CONFIG}/during-outage?environment=${ENV}`);
      if (createStatus === 503) {
        assert.equal(lostWrite.status, 404, "the write refused with 503 was not applied");
      } else if (lostWrite.status === 200) {
        problems.push(
          `the create that answered ${createStatus} during the outage was applied ` +
            `after PostgreSQL returned`,
        );
      }
      console.log(
        `postgres outage: /health said storage down ${downAfter} ms after the stop; ` +
          `cached read 200 + X-Config-Stale; during the outage: ${refused.join("; ")}; ` +
          `writes back ${recovered} ms after postgres was ready (before that: ` +
          `${meanwhile.join(", ") || "none"}); X-Config-Stale still sent ${staleLag} ms after ` +
          `the first successful write`,
      );
      assert.deepEqual(problems, []);
    } finally {
      if (pgStopped) await stack("start", "postgres");
      await Promise.all([killService(svc), killService(other)]);
      await db.drop();
    }
  },
);
