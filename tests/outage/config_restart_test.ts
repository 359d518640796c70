/**
 * The ConfigActor across PostgreSQL restarts: stopped again and again under a write load, the
 * actor never crashes (postgres.js throws from a timer when a connection dies under it,
 * porsager/postgres#1154, #1208) and reads of keys read before keep answering; a ConfigActor
 * restarted while PostgreSQL is down answers them from its last-known-good snapshot. These stop
 * and start PostgreSQL through `scripts/stack.sh`, so they run serially after the parallel
 * suite; PostgreSQL is started again in a `finally`.
 */
import assert from "node:assert/strict";
import { serverTest, stack, stackSettings, tempDir } from "../_helpers.ts";
import { ConfigClient } from "../../actors/config_client.ts";
import type { GetReply } from "../../actors/config_protocol.ts";
import { BackendUnavailableError } from "../../lib/errors.ts";
import { type ServiceProcess, spawnService } from "../_process.ts";
import { call, killService, rid, sleep, stackChildEnv, tempDatabase } from "../_pg.ts";

const ENV = "development";
const CONFIG = "/api/v1/config";
const ROUNDS = 10;

type Phase = "up" | "stopping" | "down" | "starting";

/** Log lines of a ConfigActor crash (the supervisor's) and of a contained driver error. */
const crashes = (svc: ServiceProcess) =>
  svc.lines.filter((l) => l.includes("actor crashed; restarting"));
const contained = (svc: ServiceProcess) =>
  svc.lines.filter((l) => l.includes("driver error outside any call; contained"));

/** Creates `n` keys and reads each once (fresh): the keys "read before". */
async function readKeys(svc: ServiceProcess, n: number): Promise<Map<string, string>> {
  const etags = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const key = `read.${rid()}`;
    const created = await call(svc, "POST", CONFIG, {
      key,
      value: { i, url: `/models/${i}` },
      environment: ENV,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const r = await call(svc, "GET", `${CONFIG}/${key}?environment=${ENV}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-config-stale"), null);
    etags.set(key, r.headers.get("etag")!);
  }
  return etags;
}

/** PUTs until one answers 200; returns the ms it took. */
async function writesBack(svc: ServiceProcess, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  const seen: number[] = [];
  while (Date.now() - t0 < timeoutMs) {
    const r = await call(svc, "PUT", `${CONFIG}/probe.write`, { value: t0, environment: ENV })
      .catch(() => ({ status: 0 }));
    if (r.status === 200) return Date.now() - t0;
    if (r.status === 404) {
      await call(svc, "POST", CONFIG, { key: "probe.write", value: 0, environment: ENV })
        .catch(() => {});
    }
    seen.push(r.status);
    await sleep(200);
  }
  throw new Error(`no write succeeded within ${timeoutMs} ms (${seen.slice(-10).join(", ")})`);
}

serverTest(
  "config restart",
  ["DATABASE_URL"],
  `PostgreSQL stopped ${ROUNDS} times under writes: no actor crash, reads of keys read ` +
    "before answer 200 (X-Config-Stale while it is down), writes come back each time",
  async () => {
    const db = await tempDatabase();
    let svc: ServiceProcess | undefined;
    let pgStopped = false;
    let stop = false;
    const now = { phase: "up" as Phase };
    const bad: string[] = [];
    const reads = { fresh: 0, stale: 0 };
    const writes = new Map<number, number>();
    const loops: Promise<void>[] = [];
    try {
      svc = await spawnService(stackChildEnv({ DATABASE_URL: db.url }), { keepBackends: true });
      const s = svc;
      const etags = await readKeys(s, 10);
      const keys = [...etags.keys()];

      // Four writers on keys of their own: failed writes during the stops are what leave
      // connections dying under queries.
      for (let w = 0; w < 4; w++) {
        loops.push((async () => {
          for (let n = 0; !stop; n++) {
            const key = `load.${w}.${n % 16}`;
            const r = await call(s, "PUT", `${CONFIG}/${key}`, { value: n, environment: ENV })
              .catch(() => ({ status: 0 }));
            if (r.status === 404) {
              await call(s, "POST", CONFIG, { key, value: n, environment: ENV }).catch(() => {});
            }
            writes.set(r.status, (writes.get(r.status) ?? 0) + 1);
            if (r.status !== 200) await sleep(20);
          }
        })());
      }
      // Readers of the keys read before, all along: each answer is judged by the phase it
      // was asked in.
      for (let rd = 0; rd < 2; rd++) {
        loops.push((async () => {
          for (let n = rd; !stop; n++) {
            const key = keys[n % keys.length];
            const asked = now.phase;
            const r = await call(s, "GET", `${CONFIG}/${key}?environment=${ENV}`)
              .catch((err) => ({ status: 0, headers: new Headers(), body: String(err) }));
            const stale = r.headers.get("x-config-stale") === "true";
            // A read asked while PostgreSQL was down may wait a moment for the change log
            // (FRESH_WAIT_MS); answered once it is being started again, it may be fresh.
            const answered = now.phase;
            if (r.status === 200 && stale) reads.stale++;
            else if (r.status === 200 && (asked !== "down" || answered !== "down")) reads.fresh++;
            else {
              bad.push(
                `GET ${key} while PostgreSQL was ${asked}: ${r.status}` +
                  `${r.status === 200 ? " without X-Config-Stale" : ""} ${JSON.stringify(r.body)}`,
              );
            }
            await sleep(50);
          }
        })());
      }

      const recovery: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        await sleep(300);
        now.phase = "stopping";
        pgStopped = true;
        await stack("stop", "postgres");
        now.phase = "down";
        await sleep(1_000);
        now.phase = "starting";
        await stack("start", "postgres");
        pgStopped = false;
        now.phase = "up";
        recovery.push(await writesBack(s, 20_000));
      }
      stop = true;
      await Promise.all(loops);

      // The keys still read fresh, with the value they had.
      for (const [key, etag] of etags) {
        const r = await call(s, "GET", `${CONFIG}/${key}?environment=${ENV}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("etag"), etag);
      }
      console.log(
        `postgres restarts: ${ROUNDS} stops; ${crashes(s).length} actor crashes, ` +
          `${contained(s).length} contained driver errors; reads ${reads.stale} stale + ` +
          `${reads.fresh} fresh 200, ${bad.length} bad; writes by status ` +
          `${JSON.stringify(Object.fromEntries(writes))}; writes back after ` +
          `${recovery.join(", ")} ms`,
      );
      assert.deepEqual(crashes(s), [], "no ConfigActor crash");
      assert.deepEqual(bad.slice(0, 10), [], `${bad.length} reads answered wrongly`);
      assert.ok(reads.stale > 0, "reads were made while PostgreSQL was down");
    } finally {
      stop = true;
      if (pgStopped) await stack("start", "postgres");
      await Promise.allSettled(loops);
      await killService(svc);
      await db.drop();
    }
  },
);

serverTest(
  "config restart",
  ["DATABASE_URL"],
  "a ConfigActor restarted while PostgreSQL is down answers the entries read before from " +
    "its snapshot, stale, secrets masked",
  async () => {
    // In process: the service as a whole cannot start without PostgreSQL (the registry and
    // flag actors need it at init), but a ConfigActor restarts alone after a crash, into a
    // new worker that inherits nothing but what is on disk.
    const db = await tempDatabase();
    const settings = stackSettings({
      DATABASE_URL: db.url,
      DATA_DIR: tempDir(),
      REDIS_HOST: "",
      KAFKA_BOOTSTRAP_SERVERS: "",
    });
    let client: ConfigClient | undefined = new ConfigClient({ settings });
    let pgStopped = false;
    const id = (key: string, service = "") => ({ environment: ENV, service, key });
    try {
      await client.start();
      const keys = [`a.${rid()}`, `b.${rid()}`];
      const read = new Map<string, GetReply>();
      for (const key of keys) {
        await client.create({
          id: id(key),
          value: JSON.stringify({ key }),
          secret: false,
          description: null,
          by: "test",
        });
      }
      const secret = `secret.${rid()}`;
      await client.create({
        id: id(secret),
        value: JSON.stringify("hunter2"),
        secret: true,
        description: null,
        by: "test",
      });
      // Read through a service scope: its known absence is what sends the GET on to the
      // global scope while the store is down.
      for (const key of [...keys, secret]) read.set(key, await client.get({ id: id(key, "web") }));
      assert.ok([...read.values()].every((r) => !r.stale));

      // Written by the periodic probe round, not on the way out: a crash would not flush.
      const t0 = Date.now();
      const files = () => [...Deno.readDirSync(settings.DATA_DIR)].map((e) => e.name);
      while (!files().some((n) => n.startsWith("config-snapshot-"))) {
        assert.ok(Date.now() - t0 < 15_000, "a snapshot is written within 15 s");
        await sleep(200);
      }
      const file = `${settings.DATA_DIR}/${files().find((n) => n.startsWith("config-snapshot-"))}`;
      const text = await Deno.readTextFile(file);
      assert.ok(text.includes(keys[0]), "the entries read are in the snapshot");
      assert.ok(!text.includes("hunter2"), "no secret in clear in the snapshot");

      pgStopped = true;
      await stack("stop", "postgres");
      await client.stop();
      client = new ConfigClient({ settings });
      await client.start();
      for (const [key, before] of read) {
        const r = await client.get({ id: id(key, "web") });
        assert.equal(r.stale, true, key);
        assert.equal(r.etag, before.etag, key);
        assert.equal(r.body, before.body, key);
      }
      assert.ok(!read.get(secret)!.body.includes("hunter2"));
      await assert.rejects(
        client.get({ id: id(`never.${rid()}`) }),
        (e: Error) => e instanceof BackendUnavailableError,
        "an entry never read has no last-known-good answer",
      );

      await stack("start", "postgres");
      pgStopped = false;
      const t1 = Date.now();
      while ((await client.get({ id: id(keys[0]) }).catch(() => ({ stale: true }))).stale) {
        assert.ok(Date.now() - t1 < 20_000, "fresh answers within 20 s of PostgreSQL's return");
        await sleep(200);
      }
    } finally {
      if (pgStopped) await stack("start", "postgres");
      await client?.stop();
      await db.drop();
    }
  },
);
