import assert from "node:assert/strict";
import { type BodyLimits, bodyLimits, BodyReader } from "../lib/http/body.ts";
import { loadSettings, type SettingsError } from "../lib/settings.ts";
import { PROBLEM_CONTENT_TYPE } from "../lib/problem.ts";
import { BODY_LIMIT_BYTES } from "../routes/router.ts";
import {
  chunk,
  chunkedHead,
  exchange,
  getLatencies,
  postHead,
  rssMiB,
  spawnBodyServer,
  stallBodies,
} from "./_slow_body.ts";

const MiB = 1024 * 1024;

/** A bare Deno.serve whose POSTs echo the body read by a BodyReader of `limits`. */
async function withServer(
  limits: Partial<BodyLimits>,
  fn: (s: { port: number; reader: BodyReader }) => Promise<void>,
): Promise<void> {
  using reader = new BodyReader({
    maxBytes: BODY_LIMIT_BYTES,
    idleTimeoutMs: 30_000,
    budgetBytes: 64 * MiB,
    ...limits,
  });
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError: () => new Response(null, { status: 500 }),
  }, async (req) => {
    const body = await reader.read(req, { instance: new URL(req.url).pathname, requestId: "t-1" });
    return body instanceof Response ? body : new Response(body);
  });
  try {
    await fn({ port: server.addr.port, reader });
  } finally {
    await server.shutdown();
  }
}

/** Polls `cond` every 50 ms until it holds or 10 s pass. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(cond(), what);
}

/** The body arrives after its headers, so Deno streams it instead of handing it over whole. */
const later = { pauseMs: 100 };

Deno.test("BodyReader reads a body sent with its headers, in pieces, and chunked", async () => {
  await withServer({}, async ({ port }) => {
    const whole = await exchange(port, [postHead("/e", 13) + '{"k":"välu"}']);
    assert.equal(whole.status, 200);
    assert.equal(whole.body, '{"k":"välu"}');

    // "ä" is split between two pieces: decoding happens once the body is whole.
    const bytes = new TextEncoder().encode('{"k":"välu"}');
    const pieces = await exchange(port, [
      postHead("/e", bytes.length),
      later,
      bytes.subarray(0, 8),
      later,
      bytes.subarray(8),
    ]);
    assert.equal(pieces.status, 200);
    assert.equal(pieces.body, '{"k":"välu"}');

    const chunked = await exchange(port, [
      chunkedHead("/e"),
      later,
      chunk(bytes.subarray(0, 8)),
      later,
      chunk(bytes.subarray(8)),
      "0\r\n\r\n",
    ]);
    assert.equal(chunked.status, 200);
    assert.equal(chunked.body, '{"k":"välu"}');
  });
});

Deno.test("BodyReader answers 408 with connection: close when no byte arrives for the idle timeout", async () => {
  await withServer({ idleTimeoutMs: 1000 }, async ({ port, reader }) => {
    const res = await exchange(port, [postHead("/slow", 10), later, '{"a'], { waitMs: 15_000 });
    assert.equal(res.status, 408);
    assert.equal(res.headers["connection"], "close");
    assert.equal(res.headers["content-type"], PROBLEM_CONTENT_TYPE);
    const p = JSON.parse(res.body);
    assert.equal(p.status, 408);
    assert.equal(p.instance, "/slow");
    assert.equal(p.request_id, "t-1");
    assert.equal(reader.inFlightBytes, 0);
  });
});

Deno.test("BodyReader keeps reading a body whose bytes keep arriving within the idle timeout", async () => {
  // Over 4 KiB, so read as a stream, and longer in all than the timeout: progress counts.
  await withServer({ idleTimeoutMs: 1000 }, async ({ port }) => {
    const parts = Array.from({ length: 10 }, () => [{ pauseMs: 150 }, "x".repeat(500)]).flat();
    const res = await exchange(port, [postHead("/trickle", 5000), ...parts]);
    assert.equal(res.status, 200);
    assert.equal(res.body, "x".repeat(5000));
  });
});

Deno.test("BodyReader answers 408 to a small body that does not arrive whole within the idle timeout", async () => {
  // Read whole by the runtime (at most 4 KiB declared): progress is not seen, only the end.
  await withServer({ idleTimeoutMs: 1000 }, async ({ port, reader }) => {
    const parts = Array.from({ length: 12 }, () => [{ pauseMs: 150 }, "x"]).flat();
    const res = await exchange(port, [postHead("/trickle", 12), ...parts], { waitMs: 15_000 });
    assert.equal(res.status, 408);
    assert.equal(res.headers["connection"], "close");
    assert.match(JSON.parse(res.body).detail, /did not arrive whole within 1 s/);
    assert.equal(reader.inFlightBytes, 0);
  });
});

Deno.test("BodyReader refuses a small body longer or shorter than its content-length (a Request built by hand)", async () => {
  using reader = new BodyReader({ maxBytes: 1024, idleTimeoutMs: 1000, budgetBytes: 1024 });
  const post = (body: string, length: number) =>
    reader.read(
      new Request("http://x/e", {
        method: "POST",
        body,
        headers: { "content-length": String(length) },
      }),
      { instance: "/e", requestId: "t-3" },
    );
  const longer = await post("0123456789", 5);
  assert.ok(longer instanceof Response);
  assert.equal(longer.status, 400);
  assert.match(JSON.parse(await longer.text()).detail, /longer than its content-length/);
  const shorter = await post("01234", 10);
  assert.ok(shorter instanceof Response);
  assert.equal(shorter.status, 400);
  assert.match(JSON.parse(await shorter.text()).detail, /ended before it was complete/);
  assert.equal(await post("01234", 5), "01234");
  assert.equal(reader.inFlightBytes, 0);
});

Deno.test("BodyReader times out a stream that never yields (no Deno.serve in between)", async () => {
  using reader = new BodyReader({ maxBytes: 1024, idleTimeoutMs: 200, budgetBytes: 1024 });
  const req = new Request("http://x/stuck", {
    method: "POST",
    body: new ReadableStream({ pull() {} }),
  });
  const res = await reader.read(req, { instance: "/stuck", requestId: "t-2" });
  assert.ok(res instanceof Response);
  assert.equal(res.status, 408);
  assert.equal(reader.inFlightBytes, 0);
});

Deno.test("BodyReader answers 503 with Retry-After past the in-flight budget, and admits again once it is free", async () => {
  await withServer({ budgetBytes: MiB + 500_000 }, async ({ port, reader }) => {
    const held = await stallBodies(port, 1, 1_000_000);
    try {
      await eventually(() => reader.inFlightBytes === 1_000_000, "the stalled body is reserved");
      const refused = await exchange(port, [postHead("/b", 1_000_000)]);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(refused.headers["connection"], "close");
      assert.equal(JSON.parse(refused.body).status, 503);

      // A chunked body reserves its chunks as they come: 600,000 more bytes do not fit.
      const chunked = await exchange(port, [
        chunkedHead("/b"),
        later,
        chunk("x".repeat(300_000)),
        chunk("x".repeat(300_000)),
        "0\r\n\r\n",
      ]);
      assert.equal(chunked.status, 503);
      assert.equal(reader.inFlightBytes, 1_000_000);
    } finally {
      held.close();
    }
    await eventually(() => reader.inFlightBytes === 0, "the closed body's reservation is freed");
    const admitted = await exchange(port, [
      postHead("/b", 1_000_000),
      later,
      "x".repeat(1_000_000),
    ]);
    assert.equal(admitted.status, 200);
    assert.equal(admitted.body.length, 1_000_000);
  });
});

Deno.test("BodyReader refuses a declared content-length over the cap with 413 without reading it", async () => {
  await withServer({}, async ({ port, reader }) => {
    // No body byte is ever sent: an answer at all shows the body was not waited for.
    const res = await exchange(port, [postHead("/big", BODY_LIMIT_BYTES + 1)]);
    assert.equal(res.status, 413);
    assert.equal(res.headers["connection"]?.split(", ")[0], "close");
    assert.match(JSON.parse(res.body).detail, new RegExp(`${BODY_LIMIT_BYTES} bytes`));
    assert.equal(reader.inFlightBytes, 0);
  });
});

Deno.test("BodyReader refuses a chunked body that passes the cap with 413", async () => {
  await withServer({}, async ({ port, reader }) => {
    const piece = chunk("x".repeat(64 * 1024));
    const atCap = await exchange(port, [
      chunkedHead("/c"),
      later,
      ...Array(BODY_LIMIT_BYTES / (64 * 1024)).fill(piece),
      "0\r\n\r\n",
    ]);
    assert.equal(atCap.status, 200);
    assert.equal(atCap.body.length, BODY_LIMIT_BYTES);

    const over = await exchange(port, [
      chunkedHead("/c"),
      later,
      ...Array(BODY_LIMIT_BYTES / (64 * 1024)).fill(piece),
      chunk("x"),
      "0\r\n\r\n",
    ]);
    assert.equal(over.status, 413);
    assert.equal(JSON.parse(over.body).instance, "/c");
    assert.equal(reader.inFlightBytes, 0);
  });
});

Deno.test("BodyReader answers 400 naming field body when the body is not UTF-8", async () => {
  await withServer({}, async ({ port }) => {
    const bad = new Uint8Array([0x7b, 0xff, 0x7d]);
    for (const parts of [[postHead("/u", 3), bad], [postHead("/u", 3), later, bad]]) {
      const res = await exchange(port, parts);
      assert.equal(res.status, 400);
      const p = JSON.parse(res.body);
      assert.deepEqual(p.errors, [{ field: "body", in: "body", message: "is not valid UTF-8" }]);
    }
  });
});

Deno.test("1,000 stalled 1 MB bodies grow the server's RSS by under 100 MB and GETs keep answering", async () => {
  // Every body is admitted (budget 2 GB) so what is measured is the reading, not the refusal.
  const server = await spawnBodyServer("reader", {
    BODY_BUDGET_BYTES: String(2_000_000_000),
    BODY_IDLE_MS: "120000",
  });
  try {
    // Complete 1 MB bodies first, as a running server has seen: glibc then serves later
    // large buffers from its heap instead of fresh (untouched) mappings.
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${server.url}/warm`, { method: "POST", body: "x".repeat(1_000_000) });
      assert.equal(await r.text(), "1000000");
    }
    await getLatencies(`${server.url}/health`, 50);
    const before = rssMiB(server.pid);
    const stalled = await stallBodies(server.port, 1000, 1_000_000);
    try {
      await stalled.trickle(1);
      await new Promise((r) => setTimeout(r, 2000));
      const grown = rssMiB(server.pid) - before;
      assert.ok(grown < 100, `RSS grew by ${grown.toFixed(1)} MiB`);
      const latencies = await getLatencies(`${server.url}/health`, 20);
      assert.equal(latencies.length, 20);
    } finally {
      stalled.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("bodyLimits() takes the idle timeout and budget from the settings", () => {
  const limits = bodyLimits(
    loadSettings({ HTTP_BODY_IDLE_TIMEOUT: "2.5", HTTP_BODY_BUDGET_BYTES: "2097152" }),
    BODY_LIMIT_BYTES,
  );
  assert.deepEqual(limits, {
    maxBytes: BODY_LIMIT_BYTES,
    idleTimeoutMs: 2500,
    budgetBytes: 2 * MiB,
  });
  assert.deepEqual(bodyLimits(loadSettings({}), BODY_LIMIT_BYTES), {
    maxBytes: BODY_LIMIT_BYTES,
    idleTimeoutMs: 10_000,
    budgetBytes: 64 * MiB,
  });
  assert.throws(
    () => loadSettings({ HTTP_BODY_BUDGET_BYTES: "1000" }),
    (e: SettingsError) => e.variables.includes("HTTP_BODY_BUDGET_BYTES"),
  );
});

Deno.test("new BodyReader() throws RangeError for a budget below the cap", () => {
  assert.throws(
    () => new BodyReader({ maxBytes: MiB, idleTimeoutMs: 1000, budgetBytes: MiB - 1 }),
    RangeError,
  );
});
