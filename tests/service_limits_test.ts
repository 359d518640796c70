/**
 * Request bodies against the real service process (`main.ts`): a stalled body is refused
 * after HTTP_BODY_IDLE_TIMEOUT, 1,000 stalled 1 MB bodies cost it little memory and /health
 * keeps answering, and a body that is not UTF-8 is never stored.
 */
import assert from "node:assert/strict";
import { spawnService } from "./_process.ts";
import { ioTest, tempDir } from "./_helpers.ts";
import { getLatencies, rssMiB, stallBodies } from "./_slow_body.ts";

async function service(env: Record<string, string> = {}) {
  const svc = await spawnService({
    DATA_DIR: tempDir("cs-test-limits-"),
    LOG_LEVEL: "WARNING",
    SERVICE_HEALTH_CHECK_ENABLED: "false",
    ...env,
  });
  return {
    ...svc,
    async [Symbol.asyncDispose]() {
      svc.kill("SIGKILL");
      await svc.status;
    },
  };
}

ioTest("service: a body that stops arriving is a 408 after HTTP_BODY_IDLE_TIMEOUT", async () => {
  await using svc = await service({ HTTP_BODY_IDLE_TIMEOUT: "1" });
  using stalled = await stallBodies(svc.port, 3, 1000, "/api/v1/config");
  assert.deepEqual(await stalled.statuses(10_000), { "408": 3 });
});

ioTest(
  "service: 1,000 stalled 1 MB bodies grow its RSS by under 100 MB and /health answers",
  async () => {
    // A long idle timeout: what is measured is holding them, not refusing them.
    await using svc = await service({ HTTP_BODY_IDLE_TIMEOUT: "120" });
    // Large bodies first, as a running service has seen: glibc then serves later large
    // buffers from its heap, where a zero-filled one is resident at once.
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${svc.url}/api/v1/config`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: "k", environment: "development", value: "x".repeat(900_000) }),
      });
      assert.equal(r.status, 413);
      await r.body?.cancel();
    }
    await getLatencies(`${svc.url}/health`, 50);
    const before = rssMiB(svc.child.pid);
    using stalled = await stallBodies(svc.port, 1000, 1_000_000, "/api/v1/config");
    await stalled.trickle(1);
    await new Promise((r) => setTimeout(r, 2000));
    const grown = rssMiB(svc.child.pid) - before;
    assert.ok(grown < 100, `RSS grew by ${grown.toFixed(1)} MiB`);
    assert.equal((await getLatencies(`${svc.url}/health`, 20)).length, 20);
  },
);
