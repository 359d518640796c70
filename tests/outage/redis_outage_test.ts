/**
 * Redis down: no client-visible error. Reads, writes, registry calls and flag evaluations
 * keep answering 2xx while Redis is stopped; `/health` says `degraded` with the cache down;
 * after it returns, a replica that starts then reads what was written during the outage
 * (the shared L2 cache holds nothing older). Redis is stopped through `scripts/stack.sh` and
 * always started again in `finally`.
 */
import assert from "node:assert/strict";
import { serverTest, stack, tempFile } from "../_helpers.ts";
import { type ServiceProcess, spawnService } from "../_process.ts";
import { call, killService, rid, sleep, stackChildEnv, tempDatabase, waitBackend } from "../_pg.ts";

const ENV = "development";
const CONFIG = "/api/v1/config";

async function backend(svc: ServiceProcess, name: string) {
  const h = await call(svc, "GET", "/health");
  const b = h.body as { status: string; backends: Record<string, { status: string }> };
  return { http: h.status, status: b.status, backend: b.backends[name]?.status };
}

serverTest(
  "redis outage",
  ["DATABASE_URL", "REDIS_HOST"],
  "Redis down: no client-visible error; a replica started after it returns reads the newest",
  async () => {
    const db = await tempDatabase();
    const flags = tempFile({ suffix: ".json" });
    Deno.writeTextFileSync(
      flags,
      JSON.stringify({ version: 2, features: [{ name: "f", enabled: true, strategies: [] }] }),
    );
    const env = stackChildEnv({
      DATABASE_URL: db.url,
      REDIS_HOST: Deno.env.get("REDIS_HOST")!,
      REDIS_PORT: Deno.env.get("REDIS_PORT") ?? "6379",
      FLAGS_FILE: flags,
    });
    let svc: ServiceProcess | undefined;
    let late: ServiceProcess | undefined;
    let redisStopped = false;
    try {
      svc = await spawnService(env, { keepBackends: true });
      await waitBackend(svc, "cache", "up", 10_000);
      const key = `k.${rid()}`;
      const url = `${CONFIG}/${key}?environment=${ENV}`;
      assert.equal(
        (await call(svc, "POST", CONFIG, { key, value: 1, environment: ENV })).status,
        201,
      );
      assert.equal((await call(svc, "GET", url)).status, 200); // now in both cache levels

      redisStopped = true;
      const t0 = Date.now();
      await stack("stop", "redis");
      const failures: string[] = [];
      const check = (what: string, status: number, ok: number[] = [200, 201]) => {
        if (!ok.includes(status)) failures.push(`${what}: ${status}`);
      };
      let n = 0;
      // Five seconds of mixed traffic while Redis is away.
      while (Date.now() - t0 < 5_000) {
        n++;
        check("get", (await call(svc, "GET", url)).status);
        check(
          "put",
          (await call(svc, "PUT", `${CONFIG}/${key}`, { value: n + 1, environment: ENV })).status,
        );
        check(
          "create",
          (await call(svc, "POST", CONFIG, { key: `${key}.${n}`, value: n, environment: ENV }))
            .status,
        );
        check(
          "bulk",
          (await call(svc, "POST", `${CONFIG}/bulk`, { keys: [key], environment: ENV })).status,
        );
        check(
          "register",
          (await call(svc, "POST", "/api/v1/registry/register", {
            service_name: "redis-outage",
            service_url: `http://127.0.0.1:${20000 + n}`,
          })).status,
        );
        check(
          "discover",
          (await call(svc, "GET", "/api/v1/registry/services/redis-outage")).status,
        );
        const e = await call(svc, "POST", "/api/v1/feature-flags/evaluate/boolean", {
          flag_name: "f",
        });
        check("evaluate", e.status);
        if ((e.body as { value?: boolean }).value !== true) failures.push("evaluate: not true");
      }
      const last = n + 1;
      assert.deepEqual(failures, [], `${failures.length} failures in ${n} rounds`);
      await waitBackend(svc, "cache", "down", 7_000); // probes run every 5 s
      const during = await backend(svc, "cache");
      assert.deepEqual(
        [during.http, during.status, during.backend],
        [200, "degraded", "down"],
      );
      const read = await call(svc, "GET", url);
      assert.equal((read.body as { value: number }).value, last);

      const t1 = Date.now();
      await stack("start", "redis");
      redisStopped = false;
      const upAfter = await waitBackend(svc, "cache", "up", 15_000);
      console.log(
        `  ${n} rounds of 7 calls during ${t1 - t0} ms of Redis outage: 0 errors; ` +
          `/health cache up ${upAfter} ms after Redis was started`,
      );
      // A replica that starts now reads the newest value, not one the L2 kept from before.
      late = await spawnService(env, { keepBackends: true });
      const fresh = await call(late, "GET", url);
      assert.equal((fresh.body as { value: number }).value, last, JSON.stringify(fresh.body));
      // And a write after recovery is seen by both.
      await call(late, "PUT", `${CONFIG}/${key}`, { value: "after", environment: ENV });
      for (const s of [svc, late]) {
        const t = Date.now();
        let v: unknown;
        while (Date.now() - t < 5_000) {
          v = ((await call(s, "GET", url)).body as { value: unknown }).value;
          if (v === "after") break;
          await sleep(100);
        }
        assert.equal(v, "after");
      }
    } finally {
      await killService(svc);
      await killService(late);
      if (redisStopped) await stack("start", "redis");
      await db.drop();
    }
  },
);
