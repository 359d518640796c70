/**
 * Two replicas on one PostgreSQL: a replica that was paused (SIGSTOP, as a VM freeze or a long
 * GC does) must not answer from its caches what another replica changed meanwhile. Found by
 * the chaos run (tests/chaos/): the first read after SIGCONT answered the version cached
 * before the pause, 9 s after the other replica had acknowledged a newer one.
 */
import assert from "node:assert/strict";
import { serverTest, sleep } from "./_helpers.ts";
import { spawnService } from "./_process.ts";
import { killService, stackChildEnv, tempDatabase } from "./_pg.ts";
import { createPostgres } from "../lib/backends/postgres.ts";

const KEY = "replicas.paused";

async function version(url: string): Promise<{ version: number; stale: boolean }> {
  const res = await fetch(`${url}/api/v1/config/${KEY}?environment=development`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return { version: body.version, stale: res.headers.get("x-config-stale") === "true" };
}

async function put(url: string, value: number): Promise<number> {
  const res = await fetch(`${url}/api/v1/config/${KEY}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ value, environment: "development" }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.version;
}

serverTest(
  "configuration replicas",
  ["DATABASE_URL"],
  "a replica resumed after a pause answers what another replica wrote meanwhile, never its older cache",
  async () => {
    const db = await tempDatabase();
    const a = await spawnService(stackChildEnv({ DATABASE_URL: db.url }), { keepBackends: true });
    const b = await spawnService(stackChildEnv({ DATABASE_URL: db.url }), { keepBackends: true });
    try {
      const created = await fetch(`${b.url}/api/v1/config`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: KEY, value: 0, environment: "development" }),
      });
      assert.equal(created.status, 201);
      await created.body?.cancel();
      // a reads it until it is cached on its HTTP thread (the near cache) and in its actor.
      for (let n = 0; n < 20; n++) {
        assert.equal((await version(a.url)).version, 1);
        await sleep(20);
      }
      for (let round = 0; round < 3; round++) {
        a.kill("SIGSTOP");
        let acked = 0;
        try {
          acked = await put(b.url, round + 1);
          // Longer than the actor's tail period and the freshness bound.
          await sleep(1_500);
        } finally {
          a.kill("SIGCONT");
        }
        const seen = await version(a.url);
        assert.ok(
          seen.version >= acked || seen.stale,
          `round ${round}: a answered version ${seen.version} after b acknowledged ${acked}`,
        );
      }
    } finally {
      await killService(a);
      await killService(b);
      await db.drop();
    }
  },
);

serverTest(
  "configuration replicas",
  ["DATABASE_URL"],
  "a transaction left idle (its replica frozen) is ended by the server, releasing its locks",
  async () => {
    const db = await tempDatabase();
    const frozen = createPostgres(db.url, { max: 1 });
    const other = createPostgres(db.url, { max: 1 });
    try {
      const [{ t }] =
        await frozen`SELECT current_setting('idle_in_transaction_session_timeout') AS t`;
      assert.equal(t, "2s");
      const conn = await frozen.reserve();
      await conn`BEGIN`;
      await conn`SELECT pg_advisory_xact_lock(4242)`;
      // The holder sends nothing more, as a SIGSTOPped replica would not.
      const [{ got }] = await other`SELECT pg_try_advisory_lock(4242) AS got`;
      assert.equal(got, false, "held while its transaction is open");
      await sleep(2_600);
      const [{ again }] = await other`SELECT pg_try_advisory_lock(4242) AS again`;
      assert.equal(again, true, "released once the server ended the idle transaction");
      conn.release();
    } finally {
      await frozen.end({ timeout: 1 }).catch(() => {});
      await other.end({ timeout: 1 }).catch(() => {});
      await db.drop();
    }
  },
);
