import assert from "node:assert/strict";
import { capturedLog, embeddedSettings, startService } from "./_helpers.ts";
import { actorCallDuration } from "../lib/metrics.ts";

const ENV = "staging";
const ENTRIES = 400;

/** Runs `fn(0…n-1)` with at most `width` at once. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

Deno.test("3,000 list requests whose clients hang up leave the ConfigActor ready and lists working", async () => {
  await using svc = await startService(embeddedSettings());
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    svc.app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  // ~800 KB in one scope: 400 entries of ~2 KB.
  const value = "v".repeat(2_000);
  await pool(ENTRIES, 20, async (i) => {
    const res = await svc.app.request("/api/v1/config", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: `k${i}`, value: `${i}-${value}`, environment: ENV }),
    });
    await res.body?.cancel();
    assert.equal(res.status, 201);
  });

  const cancelledBefore = actorCallDuration.series(["config", "cancelled"]).n;
  const request = new TextEncoder().encode(
    `GET /api/v1/config?environment=${ENV} HTTP/1.1\r\nHost: test\r\n\r\n`,
  );
  await pool(3_000, 50, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await conn.write(request);
    } finally {
      conn.close();
    }
  });

  // Without dropping the gone clients' lists the actor stayed busy for 15–70 s.
  const ready = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(5_000) });
  await ready.body?.cancel();
  assert.equal(ready.status, 200);
  const res = await fetch(`${base}/api/v1/config?environment=${ENV}`, {
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  const items = await res.json();
  assert.equal(items.length, ENTRIES);
  assert.equal(items[0].environment, ENV);

  assert.ok(
    actorCallDuration.series(["config", "cancelled"]).n > cancelledBefore,
    "some list calls were cancelled",
  );
  assert.equal(svc.actors.config.restarts, 0);
  assert.deepEqual(capturedLog.filter((l) => l.includes('"level":"error"')), []);
});
