/**
 * Feature flags while the Unleash server is down: evaluation goes on from the synced
 * definitions, a cold restart with Unleash still down evaluates from the definitions
 * persisted in PostgreSQL (reason CACHED), with FEATURE_FLAG_FALLBACK_ENABLED=false it
 * answers the default with ERROR instead, and the service recovers when Unleash returns.
 * Unleash is stopped through `scripts/stack.sh` and always started again in `finally`.
 */
import assert from "node:assert/strict";
import { serverTest, stack, until } from "../_helpers.ts";
import { type ServiceProcess, spawnService } from "../_process.ts";
import { call, killService, sleep, stackChildEnv, tempDatabase, waitBackend } from "../_pg.ts";
import { UNLEASH_VARS, UnleashAdmin } from "../_unleash.ts";

const DEV = "development";

async function evaluate(svc: ServiceProcess, flag: string) {
  const r = await call(svc, "POST", "/api/v1/feature-flags/evaluate", {
    flag_name: flag,
    user_id: "user-1",
    default_value: false,
    environment: DEV,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { value: boolean; reason: string; error_code?: string };
}

serverTest(
  "flags outage",
  [...UNLEASH_VARS, "DATABASE_URL"],
  "Unleash down: evaluation goes on; a cold restart evaluates the persisted definitions",
  async () => {
    const admin = new UnleashAdmin();
    const db = await tempDatabase();
    const env = stackChildEnv({
      DATABASE_URL: db.url,
      UNLEASH_URL: Deno.env.get("UNLEASH_URL")!,
      UNLEASH_API_TOKEN: Deno.env.get("UNLEASH_API_TOKEN")!,
      UNLEASH_CLIENT_TOKENS: Deno.env.get("UNLEASH_CLIENT_TOKENS")!,
      UNLEASH_REFRESH_INTERVAL: "1",
      UNLEASH_DISABLE_METRICS: "true",
    });
    let svc: ServiceProcess | undefined;
    let unleashStopped = false;
    try {
      const f = await admin.flag("outage", { [DEV]: [{ name: "default" }] });
      svc = await spawnService(env, { keepBackends: true });
      await until(() => evaluate(svc!, f), (r) => r.value === true, {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: "first sync",
      });

      await stack("stop", "unleash");
      unleashStopped = true;
      await sleep(2_500); // a few failed polls
      const during = await evaluate(svc, f);
      assert.deepEqual([during.value, during.reason], [true, "STATIC"]);
      // Probes run every 5 s.
      await waitBackend(svc, "flags", "down", 8_000);
      const sync = await call(svc, "POST", `/api/v1/feature-flags/sync?environment=${DEV}`);
      assert.equal(sync.status, 503);

      // Cold restart, Unleash still down: the definitions stored in PostgreSQL answer.
      await killService(svc);
      svc = await spawnService(env, { keepBackends: true });
      const cold = await evaluate(svc, f);
      assert.deepEqual([cold.value, cold.reason], [true, "CACHED"]);
      const list = await call(svc, "GET", `/api/v1/feature-flags?environment=${DEV}`);
      assert.ok((list.body as { name: string }[]).some((x) => x.name === f));
      await killService(svc);

      // Without fallback the default answers, with the reason why.
      svc = await spawnService({ ...env, FEATURE_FLAG_FALLBACK_ENABLED: "false" }, {
        keepBackends: true,
      });
      const strict = await evaluate(svc, f);
      assert.deepEqual(
        [strict.value, strict.reason, strict.error_code],
        [false, "ERROR", "PROVIDER_NOT_READY"],
      );

      // Unleash returns: the next poll makes the definitions live again.
      await stack("start", "unleash");
      unleashStopped = false;
      const t1 = Date.now();
      const back = await until(
        () => evaluate(svc!, f),
        (r) => r.reason === "STATIC",
        { timeoutMs: 20_000, intervalMs: 200, what: "recovery" },
      );
      assert.equal(back.value, true);
      console.log(`  flags live again ${Date.now() - t1} ms after Unleash was ready`);
    } finally {
      await killService(svc);
      if (unleashStopped) await stack("start", "unleash");
      await admin.cleanup().catch(() => {});
      await db.drop();
    }
  },
);
