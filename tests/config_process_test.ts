/**
 * Configuration entries across real processes: crash safety (kill -9 during writes), two
 * replicas on one PostgreSQL + Redis, the Kafka outbox seen by a real consumer, and SSE
 * across replicas. Each PostgreSQL test has its own database, Kafka topic and DATA_DIR, so
 * the file runs in parallel with the others; nothing here stops a server.
 */
import assert from "node:assert/strict";
import { serverTest } from "./_helpers.ts";
import { type ServiceProcess, spawnService } from "./_process.ts";
import {
  call,
  encryptionKey,
  killService,
  readTopic,
  rid,
  type Seen,
  sleep,
  stackChildEnv,
  tempDatabase,
  tempDir,
  tempTopic,
} from "./_pg.ts";

const ENV = "development";
type Reply = Awaited<ReturnType<typeof call>>;
const CONFIG = "/api/v1/config";

interface Entry {
  key: string;
  value: unknown;
  version: number;
  secret: boolean;
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

/**
 * Writes new keys with 8 concurrent writers, SIGKILLs the child after 1.5 s, restarts it on
 * the same storage and checks every acknowledged write (value and history) is there.
 */
async function killDuringWrites(
  first: Record<string, string>,
  keepBackends: boolean,
  label: string,
): Promise<void> {
  let svc: ServiceProcess | undefined = await spawnService(first, { keepBackends });
  const acked = new Map<string, { value: unknown; version: number }>();
  const statuses: Record<string, number> = {};
  let attempted = 0;
  let failedInFlight = 0;
  let stop = false;
  try {
    const url = svc.url;
    const writer = async () => {
      while (!stop) {
        const i = attempted++;
        const key = `k${i}`;
        const value = { i, text: `value of ${key}`, pad: "x".repeat(200) };
        try {
          const res = await fetch(`${url}${CONFIG}`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-user": "crash-test" },
            body: JSON.stringify({ key, value, environment: ENV }),
          });
          const text = await res.text();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status === 201) acked.set(key, { value, version: JSON.parse(text).version });
        } catch {
          // The process died with this request in flight: not acknowledged.
          failedInFlight++;
          return;
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    await sleep(1_500);
    const ackedBeforeKill = acked.size;
    svc.kill("SIGKILL");
    await svc.status;
    stop = true;
    await Promise.all(writers);
    console.log(
      `${label}: ${acked.size} writes acknowledged before SIGKILL ` +
        `(${ackedBeforeKill} when the signal was sent; ${attempted} attempted, ` +
        `${failedInFlight} cut off in flight, statuses ${JSON.stringify(statuses)})`,
    );
    assert.ok(acked.size > 0, "some writes were acknowledged before the kill");
    assert.deepEqual(Object.keys(statuses).filter((s) => s !== "201"), [], "only 201s");

    svc = await spawnService({ ...first, SERVICE_INSTANCE_ID: `cs-t-${rid()}` }, {
      keepBackends,
    });
    const after = svc;
    let exited = "";
    after.status.then((st) => {
      exited = `the restarted child exited (code ${st.code}, signal ${st.signal}) during the ` +
        `checks:\n${after.lines.slice(-20).join("\n")}`;
    });
    const lost: string[] = [];
    await pool([...acked], 16, async ([key, want]) => {
      const q = `?environment=${ENV}`;
      const got = await call(after, "GET", `${CONFIG}/${key}${q}`).catch((err) => {
        throw new Error(`${err}; ${exited || "the restarted child is still running"}`);
      });
      if (got.status !== 200) {
        lost.push(`${key}: GET ${got.status}`);
        return;
      }
      const e = got.body as Entry;
      if (JSON.stringify(e.value) !== JSON.stringify(want.value) || e.version !== want.version) {
        lost.push(`${key}: read ${JSON.stringify(e.value)} v${e.version}`);
      }
      const h = await call(after, "GET", `${CONFIG}/${key}/history${q}`);
      const items = h.body as { change_type: string; version: number; updated_by: string }[];
      if (
        h.status !== 200 ||
        !items.some((x) =>
          x.change_type === "created" && x.version === want.version &&
          x.updated_by === "crash-test"
        )
      ) lost.push(`${key}: history ${h.status} ${JSON.stringify(items)}`);
    });
    assert.equal(exited, "");
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes lost`);

    // What was in flight at the kill either committed whole (entry + history) or not at all.
    const list = await call(after, "GET", `${CONFIG}?environment=${ENV}&limit=10000`);
    assert.equal(list.status, 200);
    const present = new Set((list.body as Entry[]).map((e) => e.key));
    for (const key of acked.keys()) assert.ok(present.has(key), `${key} is listed`);
    const extra = [...present].filter((k) => !acked.has(k));
    assert.ok(extra.length <= 8, `at most the 8 in-flight writes committed unacknowledged`);
    for (const key of extra) {
      const h = await call(after, "GET", `${CONFIG}/${key}/history?environment=${ENV}`);
      assert.equal(h.status, 200);
      assert.equal((h.body as { change_type: string }[])[0]?.change_type, "created", key);
    }
  } finally {
    stop = true;
    await killService(svc);
  }
}

Deno.test({
  name: "kill -9 during a stream of writes loses no acknowledged write (SQLite)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = tempDir("cs-crash-");
    await killDuringWrites(
      { DATA_DIR: dir, SERVICE_INSTANCE_ID: `cs-t-${rid()}`, LOG_LEVEL: "WARNING" },
      false,
      "SQLite",
    );
  },
});

serverTest(
  "config processes",
  ["DATABASE_URL"],
  "kill -9 during a stream of writes loses no acknowledged write (PostgreSQL)",
  async () => {
    const db = await tempDatabase();
    try {
      await killDuringWrites(stackChildEnv({ DATABASE_URL: db.url }), true, "PostgreSQL");
    } finally {
      await db.drop();
    }
  },
);

serverTest(
  "config processes",
  ["DATABASE_URL", "REDIS_HOST"],
  "two processes on one PostgreSQL + Redis: a write through one is read through the other " +
    "within 1 s, and never an older value after",
  async () => {
    const db = await tempDatabase();
    let a: ServiceProcess | undefined;
    let b: ServiceProcess | undefined;
    let stopReaders = false;
    const readers: Promise<void>[] = [];
    try {
      // Redis is shared with the other test files: keys of our own.
      const key = `xp.${rid()}`;
      const common = { DATABASE_URL: db.url, REDIS_HOST: Deno.env.get("REDIS_HOST")! };
      [a, b] = await Promise.all([
        spawnService(stackChildEnv(common), { keepBackends: true }),
        spawnService(stackChildEnv(common), { keepBackends: true }),
      ]);
      const procs: ServiceProcess[] = [a, b];
      const path = `${CONFIG}/${key}?environment=${ENV}`;
      const created = await call(a, "POST", CONFIG, { key, value: 0, environment: ENV });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      let read = await call(b, "GET", path);
      assert.equal(read.status, 200, "B reads what A created");
      assert.equal((read.body as Entry).value, 0);

      // Sequential readers on each process besides the checks below: a process must never
      // answer an older version than it answered before (and they widen the race windows).
      const regressions: string[] = [];
      for (const p of procs) {
        readers.push((async () => {
          let last = 0;
          while (!stopReaders) {
            const r = await call(p, "GET", path);
            if (r.status !== 200) {
              regressions.push(`${p.port}: GET ${r.status}`);
              continue;
            }
            const v = (r.body as Entry).version;
            if (v < last) regressions.push(`${p.port}: v${v} after v${last}`);
            last = Math.max(last, v);
          }
        })());
      }

      let maxLatency = 0;
      const latencies: number[] = [];
      for (let i = 1; i <= 50; i++) {
        const writer = procs[(i + 1) % 2];
        const reader = procs[i % 2];
        const put = await call(writer, "PUT", `${CONFIG}/${key}`, { value: i, environment: ENV });
        assert.equal(put.status, 200, JSON.stringify(put.body));
        const want = (put.body as Entry).version;
        const acked = performance.now();
        const own = await call(writer, "GET", path);
        assert.equal((own.body as Entry).version, want, `the writer reads its own write ${i}`);
        // Poll the other process until it shows value i.
        while (true) {
          read = await call(reader, "GET", path);
          assert.equal(read.status, 200);
          const e = read.body as Entry;
          if (e.version === want) {
            assert.equal(e.value, i);
            break;
          }
          assert.ok(e.version < want, `v${e.version} is no newer than the write's v${want}`);
          const waited = performance.now() - acked;
          assert.ok(
            waited < 1_000,
            `write ${i} (v${want}) through ${writer.port} not visible on ${reader.port} ` +
              `after ${waited.toFixed(0)} ms: still v${e.version} = ${JSON.stringify(e.value)}`,
          );
          await sleep(5);
        }
        const latency = performance.now() - acked;
        latencies.push(latency);
        maxLatency = Math.max(maxLatency, latency);
        for (let k = 0; k < 5; k++) {
          for (const p of procs) {
            const again = await call(p, "GET", path);
            assert.equal(again.status, 200);
            const v = (again.body as Entry).version;
            assert.ok(v >= want, `after showing v${want}, ${p.port} answered v${v}`);
          }
        }
      }
      stopReaders = true;
      await Promise.all(readers);
      latencies.sort((x, y) => x - y);
      console.log(
        `cross-process read latency over 50 writes: max ${maxLatency.toFixed(1)} ms, ` +
          `median ${latencies[25].toFixed(1)} ms`,
      );
      assert.deepEqual(regressions, [], "no process answered an older version after a newer one");
    } finally {
      stopReaders = true;
      await Promise.allSettled(readers);
      await Promise.all([killService(a), killService(b)]);
      await db.drop();
    }
  },
);

serverTest(
  "config processes",
  ["DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"],
  "a real Kafka consumer sees one event per write",
  async () => {
    const [db, topic] = await Promise.all([tempDatabase(), tempTopic(3)]);
    let svc: ServiceProcess | undefined;
    let reader: Awaited<ReturnType<typeof readTopic>> | undefined;
    try {
      svc = await spawnService(
        stackChildEnv({
          DATABASE_URL: db.url,
          KAFKA_BOOTSTRAP_SERVERS: Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!,
          KAFKA_TOPIC_CONFIG_UPDATES: topic.topic,
          CONFIG_ENCRYPTION_KEY: encryptionKey(),
        }),
        { keepBackends: true },
      );
      reader = await readTopic(topic.topic);
      const service = "svc-a";
      // 50 writes: 10 creates (k9 a secret), 25 updates, 5 deletes, 5 re-creates, 5 updates.
      type Op = { method: string; key: string; value?: unknown; type: string };
      const ops: Op[] = [];
      for (let k = 0; k < 10; k++) ops.push({ method: "POST", key: `k${k}`, type: "created" });
      for (let n = 0; n < 25; n++) ops.push({ method: "PUT", key: `k${n % 10}`, type: "updated" });
      for (let k = 0; k < 5; k++) ops.push({ method: "DELETE", key: `k${k}`, type: "deleted" });
      for (let k = 0; k < 5; k++) ops.push({ method: "POST", key: `k${k}`, type: "created" });
      for (let k = 0; k < 5; k++) ops.push({ method: "PUT", key: `k${k}`, type: "updated" });
      assert.equal(ops.length, 50);
      const written: { key: string; version: number; type: string; value: unknown }[] = [];
      for (const [n, op] of ops.entries()) {
        const value = { n, key: op.key };
        const secret = op.key === "k9";
        const res: Reply = op.method === "POST"
          ? await call(svc, "POST", CONFIG, {
            key: op.key,
            value,
            environment: ENV,
            service_name: service,
            ...(secret ? { secret: true } : {}),
          })
          : op.method === "PUT"
          ? await call(svc, "PUT", `${CONFIG}/${op.key}`, {
            value,
            environment: ENV,
            service_name: service,
          })
          : await call(
            svc,
            "DELETE",
            `${CONFIG}/${op.key}?environment=${ENV}&service_name=${service}`,
          );
        assert.equal(res.status, op.method === "POST" ? 201 : 200, JSON.stringify(res.body));
        written.push({ key: op.key, version: (res.body as Entry).version, type: op.type, value });
      }
      const lastAck = Date.now();
      const distinct = (m: Seen[]) => new Set(m.map((x) => x.value.event_id)).size;
      const msgs = await reader.until((m) => distinct(m) >= 50, 30_000, "50 distinct events");
      const caughtUp = Math.max(...msgs.map((m) => m.at)) - lastAck;
      await sleep(1_000); // anything beyond the 50 would show up now
      console.log(
        `kafka: ${reader.messages.length} messages, ${distinct(reader.messages)} distinct ` +
          `event ids; the last arrived ${caughtUp} ms after the last write was acknowledged`,
      );
      assert.equal(distinct(reader.messages), 50, "one event per write");

      const fields = [
        "event_id",
        "type",
        "key",
        "environment",
        "service_name",
        "version",
        "updated_by",
        "updated_at",
      ];
      const seen = new Set<string>();
      const byKey = new Map<string, { version: number; type: string; value: unknown }[]>();
      for (const m of msgs) {
        const e = m.value;
        for (const f of fields) assert.ok(f in e, `event has ${f}: ${JSON.stringify(e)}`);
        assert.equal(m.headers.event_id, e.event_id, "the event_id header is the event's");
        assert.equal(m.key, `${ENV}/${service}/${e.key}`, "message key is env/service/key");
        assert.equal(e.environment, ENV);
        assert.equal(e.service_name, service);
        assert.equal(e.updated_by, "anonymous");
        const secret = e.key === "k9";
        if (e.type === "deleted" || secret) {
          assert.ok(!("value" in e), `no value in ${JSON.stringify(e)}`);
        } else assert.ok("value" in e, `value in ${JSON.stringify(e)}`);
        if (secret) assert.equal(e.secret, true);
        if (seen.has(e.event_id as string)) continue; // at-least-once: a duplicate is allowed
        seen.add(e.event_id as string);
        const list = byKey.get(e.key as string) ?? [];
        list.push({ version: e.version as number, type: e.type as string, value: e.value });
        byKey.set(e.key as string, list);
      }
      for (let k = 0; k < 10; k++) {
        const key = `k${k}`;
        const want = written.filter((w) => w.key === key).map((w) => ({
          version: w.version,
          type: w.type,
          value: w.type === "deleted" || key === "k9" ? undefined : w.value,
        }));
        assert.deepEqual(byKey.get(key), want, `${key}: one event per write, in version order`);
      }
    } finally {
      await reader?.stop();
      await killService(svc);
      await Promise.all([db.drop(), topic.drop()]);
    }
  },
);

serverTest(
  "config processes",
  ["DATABASE_URL"],
  "SSE: a watcher on one process sees a change written through another within 1 s",
  async () => {
    const db = await tempDatabase();
    let a: ServiceProcess | undefined;
    let b: ServiceProcess | undefined;
    const ac = new AbortController();
    try {
      [a, b] = await Promise.all([
        spawnService(stackChildEnv({ DATABASE_URL: db.url }), { keepBackends: true }),
        spawnService(stackChildEnv({ DATABASE_URL: db.url }), { keepBackends: true }),
      ]);
      const res = await fetch(`${b.url}${CONFIG}/watch?environment=${ENV}`, {
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      const frames = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      /** The next complete SSE frame's fields (comments dropped), or null at the end. */
      const nextFrame = async (): Promise<Record<string, string> | null> => {
        while (true) {
          const i = buf.indexOf("\n\n");
          if (i >= 0) {
            const raw = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const f: Record<string, string> = {};
            for (const line of raw.split("\n")) {
              if (line.startsWith(":") || !line.includes(":")) continue;
              const [name, ...rest] = line.split(":");
              f[name] = rest.join(":").replace(/^ /, "");
            }
            if (f.data !== undefined) return f;
            continue;
          }
          const { value, done } = await frames.read();
          if (done) return null;
          buf += value;
        }
      };
      const key = "watched";
      let maxLatency = 0;
      for (let i = 1; i <= 5; i++) {
        const w: Reply = i === 1
          ? await call(a, "POST", CONFIG, { key, value: i, environment: ENV })
          : await call(a, "PUT", `${CONFIG}/${key}`, { value: i, environment: ENV });
        assert.ok(w.status === 201 || w.status === 200, JSON.stringify(w.body));
        const acked = performance.now();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const frame = await Promise.race([
          nextFrame(),
          new Promise<never>((_, rej) =>
            timer = setTimeout(() => rej(new Error(`no SSE frame for write ${i} in 1 s`)), 1_000)
          ),
        ]).finally(() => clearTimeout(timer));
        const latency = performance.now() - acked;
        maxLatency = Math.max(maxLatency, latency);
        assert.ok(frame, "the stream is open");
        const data = JSON.parse(frame.data);
        assert.equal(frame.event, i === 1 ? "created" : "updated");
        assert.equal(data.key, key);
        assert.equal(data.value, i);
        assert.equal(data.version, (w.body as Entry).version);
        assert.equal(frame.id, String(data.seq));
      }
      console.log(`SSE across processes: max latency ${maxLatency.toFixed(1)} ms over 5 writes`);
      await frames.cancel();
    } finally {
      ac.abort();
      await Promise.all([killService(a), killService(b)]);
      await db.drop();
    }
  },
);
