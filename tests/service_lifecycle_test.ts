/**
 * The service's start and stop as an operator sees them: what the log says and what `/health`
 * answers around them.
 */
import assert from "node:assert/strict";
import {
  capturedLog,
  embeddedSettings,
  registerInstance,
  startService,
  tempDir,
  waitFor,
} from "./_helpers.ts";
import { spawnService } from "./_process.ts";
import { redisStub } from "./_redis_stub.ts";

/** Log lines written since `from` at `level` or above (warn: warn and error). */
function linesSince(from: number, level: "warn") {
  return capturedLog.slice(from).map((l) => JSON.parse(l)).filter((l) =>
    level === "warn" && (l.level === "warn" || l.level === "error")
  );
}

Deno.test("stopping the service while a health check is in flight logs no warning", async () => {
  // An instance whose health endpoint answers only when its client goes away.
  let checking = false;
  await using instance = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      checking = true;
      return new Promise<Response>((resolve) => {
        req.signal.addEventListener("abort", () => resolve(new Response("gone")));
      });
    },
  );
  const url = `http://127.0.0.1:${instance.addr.port}`;
  const svc = await startService(embeddedSettings({
    SERVICE_HEALTH_CHECK_INTERVAL: "0.1",
    HEALTH_CHECK_TIMEOUT: "60",
    HEALTH_CHECK_MAX_RETRIES: "0",
  }));
  await registerInstance(svc.app, {
    service_name: "hangs",
    service_url: url,
    metadata: { instance_id: "hangs-1" },
  });
  await waitFor(() => checking, 10_000, "the health check to reach the instance");

  const from = capturedLog.length;
  await svc[Symbol.asyncDispose]();
  assert.deepEqual(linesSince(from, "warn"), [], "shutting down is not a warning");
});

Deno.test("/health while Redis is still connecting: cache unknown, then up, never down", async () => {
  // Redis accepts the connection at once and answers after 1.5 s, as a Redis starting up or a
  // connection still being opened when the service starts.
  await using stub = redisStub({ slowStartMs: 1_500 });
  await using svc = await startService(embeddedSettings({
    REDIS_HOST: "127.0.0.1",
    REDIS_PORT: String(stub.port),
    // The FlagActor would wait for Redis in its init, and the service with it.
    FEATURE_FLAG_CACHE_TTL: "0",
  }));
  const seen: string[] = [];
  await waitFor(
    async () => {
      const res = await svc.app.request("/health");
      const body = await res.json();
      const cache = body.backends.cache;
      seen.push(`${res.status} ${body.status} cache ${cache?.kind} ${cache?.status}`);
      return cache?.status === "up";
    },
    10_000,
    "the cache to be up",
  );
  assert.equal(seen[0], "200 healthy cache redis unknown", "a state from the start, not a failure");
  assert.deepEqual(
    seen.filter((s) => !/^200 healthy cache redis (unknown|up)$/.test(s)),
    [],
    "never degraded while the first connection opens",
  );
});

Deno.test("the start log and /health name the same backend for every concern", async () => {
  const svc = await spawnService({ DATA_DIR: tempDir() });
  try {
    const listening = JSON.parse(
      svc.lines.find((l) => l.includes('"msg":"config-service listening"'))!,
    );
    const logged: Record<string, string> = listening.backends;
    const health = await waitFor(
      async () => {
        const body = await (await fetch(`${svc.url}/health`)).json();
        return Object.keys(body.backends).length >= Object.keys(logged).length ? body : undefined;
      },
      10_000,
      "every backend in /health",
    );
    const reported = Object.fromEntries(
      Object.entries(health.backends as Record<string, { kind: string }>).map((
        [concern, b],
      ) => [concern, b.kind]),
    );
    assert.deepEqual(reported, logged);
  } finally {
    svc.kill();
    await svc.status;
    await svc.drained;
  }
});
