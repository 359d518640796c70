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

Deno.test("SIGTERM after kept-alive connections have come and gone exits 0 (the h2c front)", async () => {
  const svc = await spawnService({ DATA_DIR: tempDir() });
  try {
    // Connections that ended before the signal: the front handed each one to Deno's own
    // server; shutting down must not touch those (it crashed with "Bad resource ID").
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(new URL(svc.url).port),
      });
      const ask = new TextEncoder().encode("GET /live HTTP/1.1\r\nHost: x\r\n\r\n");
      for (let j = 0; j < 2; j++) {
        await conn.write(ask);
        const buf = new Uint8Array(4096);
        assert.ok((await conn.read(buf)) !== null);
      }
      conn.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    svc.kill("SIGTERM");
    const st = await svc.status;
    await svc.drained;
    assert.equal(st.code, 0, svc.lines.join("\n"));
    assert.ok(!svc.lines.some((l) => l.includes("Bad resource")), svc.lines.join("\n"));
  } finally {
    svc.kill("SIGKILL");
    await svc.status;
  }
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
