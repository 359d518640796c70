import assert from "node:assert/strict";
import { runServiceOnce, spawnService } from "./_process.ts";
import { tempDir } from "./_helpers.ts";

Deno.test("SERVICE_PORT=abc exits non-zero naming SERVICE_PORT", async () => {
  const r = await runServiceOnce({
    SERVICE_PORT: "abc",
    DATA_DIR: tempDir(),
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /SERVICE_PORT must be an integer/);
});

Deno.test("SIGTERM drains in-flight requests, then exits 0 within 10 s", async () => {
  const svc = await spawnService({ DATA_DIR: tempDir() });
  try {
    // Large responses keep requests in flight while the signal arrives.
    const bodies = Array.from(
      { length: 16 },
      (_, i) => i % 2 === 0 ? "/docs/swagger-ui-bundle.js" : "/ready",
    );
    const responses = await Promise.all(bodies.map((p) => fetch(svc.url + p)));
    const t0 = Date.now();
    svc.kill("SIGTERM");
    const texts = await Promise.all(responses.map((r) => r.text()));
    for (const [i, r] of responses.entries()) {
      assert.equal(r.status, 200, `${bodies[i]} answered`);
      if (i % 2 === 0) assert.ok(texts[i].length > 1_000_000, "the whole asset arrived");
      else assert.equal(JSON.parse(texts[i]).status, "ready");
    }
    const st = await svc.status;
    await svc.drained;
    assert.equal(st.code, 0, svc.lines.join("\n"));
    assert.ok(Date.now() - t0 < 10_000, "exited within 10 s");
    assert.ok(svc.lines.some((l) => l.includes('"msg":"stopped"')));
  } finally {
    svc.kill("SIGKILL");
    await svc.status;
  }
});
