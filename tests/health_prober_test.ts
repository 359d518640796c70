import assert from "node:assert/strict";
import { probe, type ProbeSettings, retryDelayMs } from "../lib/health/prober.ts";

const FAST: ProbeSettings = {
  timeoutMs: 1000,
  maxRetries: 0,
  initialRetryDelayMs: 10,
  maxRetryDelayMs: 100,
  backoff: 2,
  additionalEndpoints: [],
};

/** A stub HTTP server on a free port; `hits` counts requests per path. */
function stub(handler: (req: Request, url: URL) => Response | Promise<Response>) {
  const hits = new Map<string, number>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const url = new URL(req.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    return handler(req, url);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { server, base, hits };
}

/** A port nobody listens on: bound once by a server, then released. */
async function deadPort(): Promise<number> {
  const s = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response());
  const port = s.addr.port;
  await s.shutdown();
  return port;
}

Deno.test("probe() reports a live instance answering 200 on /health as healthy", async () => {
  const { server, base, hits } = stub(() => new Response("ok"));
  try {
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, FAST);
    assert.equal(r.healthy, true);
    assert.equal(r.attempts, 1);
    assert.equal(r.reason, undefined);
    assert.equal(r.endpoints.length, 1);
    assert.deepEqual(
      { url: r.endpoints[0].url, ok: r.endpoints[0].ok, status: r.endpoints[0].status },
      { url: `${base}/health`, ok: true, status: 200 },
    );
    assert.ok(!Number.isNaN(Date.parse(r.checked_at)));
    assert.equal(hits.get("/health"), 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() reports an instance with nothing listening as unhealthy with a reason", async () => {
  const port = await deadPort();
  const base = `http://127.0.0.1:${port}`;
  const r = await probe({ health_check_url: `${base}/health`, service_url: base }, FAST);
  assert.equal(r.healthy, false);
  assert.equal(r.endpoints[0].status, null);
  assert.ok(r.endpoints[0].error);
  assert.match(r.reason ?? "", new RegExp(`^${base}/health: `));
});

Deno.test("probe() defaults an empty health_check_url to service_url + /health", async () => {
  const { server, base, hits } = stub(() => new Response("ok"));
  try {
    const r = await probe({ health_check_url: "", service_url: `${base}/api/` }, FAST);
    assert.equal(r.healthy, true);
    assert.equal(hits.get("/api/health"), 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() retries a failing instance with backoff delays and succeeds on the third round", async () => {
  let n = 0;
  const { server, base } = stub(() => new Response(null, { status: ++n <= 2 ? 500 : 200 }));
  try {
    const s = {
      ...FAST,
      maxRetries: 3,
      initialRetryDelayMs: 50,
      backoff: 2,
      maxRetryDelayMs: 10_000,
    };
    const t0 = performance.now();
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, s);
    const elapsed = performance.now() - t0;
    assert.equal(r.healthy, true);
    assert.equal(r.attempts, 3);
    assert.equal(n, 3);
    assert.ok(elapsed >= 150, `waited 50 + 100 ms between rounds, took ${elapsed} ms`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() gives up after maxRetries extra rounds and keeps the last round's answer", async () => {
  let n = 0;
  const { server, base } = stub(() => new Response(null, { status: 500 + n++ }));
  try {
    const s = { ...FAST, maxRetries: 2, initialRetryDelayMs: 5 };
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, s);
    assert.equal(r.healthy, false);
    assert.equal(r.attempts, 3);
    assert.equal(n, 3);
    assert.equal(r.endpoints[0].status, 502);
    assert.equal(r.reason, `${base}/health answered 502`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() caps retry delays at maxRetryDelayMs", async () => {
  const s = { ...FAST, maxRetries: 4, initialRetryDelayMs: 50, backoff: 10, maxRetryDelayMs: 60 };
  assert.deepEqual([0, 1, 2, 3].map((n) => retryDelayMs(s, n)), [50, 60, 60, 60]);

  const { server, base } = stub(() => new Response(null, { status: 503 }));
  try {
    // The sleeps asked for are recorded by an injected sleep…
    const asked: number[] = [];
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, s, undefined, {
      sleep: (ms) => {
        asked.push(ms);
        return Promise.resolve();
      },
    });
    assert.equal(r.attempts, 5);
    assert.deepEqual(asked, [50, 60, 60, 60]);

    // …and the default sleep really waits them: 50 + 60, not 50 + 500.
    const t0 = performance.now();
    await probe({ health_check_url: `${base}/health`, service_url: base }, { ...s, maxRetries: 2 });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 110 && elapsed < 450, `took ${elapsed} ms`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() times out a hanging instance quickly and reports the timeout", async () => {
  const release = new AbortController();
  const { server, base } = stub(async () => {
    // Sleeps 2 s unless the test ends first, so shutdown does not wait for the sleep.
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      release.signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
    return new Response("late");
  });
  try {
    const t0 = performance.now();
    const r = await probe(
      { health_check_url: `${base}/health`, service_url: base },
      { ...FAST, timeoutMs: 100, maxRetries: 0 },
    );
    const elapsed = performance.now() - t0;
    assert.equal(r.healthy, false);
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
    assert.equal(r.endpoints[0].error, "timed out after 100 ms");
    assert.match(r.reason ?? "", /timed out after 100 ms/);
  } finally {
    release.abort();
    await server.shutdown();
  }
});

Deno.test("probe() counts a 500 on an additional endpoint as unhealthy and a 404 as not provided", async () => {
  let ready = 500;
  const { server, base, hits } = stub((_req, url) => {
    if (url.pathname === "/svc/health") return new Response("ok");
    if (url.pathname === "/svc/ready") return new Response(null, { status: ready });
    return new Response(null, { status: 404 });
  });
  try {
    const t = { health_check_url: `${base}/svc/health`, service_url: `${base}/svc` };
    const s = { ...FAST, additionalEndpoints: ["/ready", "/live"] };
    const bad = await probe(t, s);
    assert.equal(bad.healthy, false);
    assert.equal(bad.reason, `${base}/svc/ready answered 500`);
    assert.deepEqual(bad.endpoints.map((e) => [e.url, e.ok, e.status]), [
      [`${base}/svc/health`, true, 200],
      [`${base}/svc/ready`, false, 500],
      [`${base}/svc/live`, true, 404],
    ]);

    ready = 200;
    const good = await probe(t, s);
    assert.equal(good.healthy, true);
    assert.equal(hits.get("/svc/live"), 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() does not accept a 404 on the health URL itself", async () => {
  const { server, base } = stub(() => new Response(null, { status: 404 }));
  try {
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, FAST);
    assert.equal(r.healthy, false);
    assert.equal(r.reason, `${base}/health answered 404`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() treats a redirect as a failure and does not follow it", async () => {
  const target = stub(() => new Response("ok"));
  const { server, base } = stub(() =>
    new Response(null, { status: 302, headers: { location: `${target.base}/health` } })
  );
  try {
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, FAST);
    assert.equal(r.healthy, false);
    assert.equal(r.endpoints[0].status, 302);
    assert.equal(r.endpoints[0].error, "redirect not followed");
    assert.equal(target.hits.size, 0, "the redirect target was never contacted");
  } finally {
    await server.shutdown();
    await target.server.shutdown();
  }
});

Deno.test("probe() keeps additional endpoints on the service's host", async () => {
  const { server, base, hits } = stub(() => new Response("ok"));
  try {
    const s = { ...FAST, additionalEndpoints: ["//evil.example/ready", "/health"] };
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, s);
    assert.equal(r.healthy, true);
    // "/health" duplicates the health URL and is probed once.
    assert.deepEqual(r.endpoints.map((e) => e.url), [
      `${base}/health`,
      `${base}/evil.example/ready`,
    ]);
    assert.equal(hits.get("/health"), 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() refuses non-HTTP and malformed URLs without throwing", async () => {
  const file = await probe({ health_check_url: "file:///etc/passwd", service_url: "" }, FAST);
  assert.equal(file.healthy, false);
  assert.match(file.reason ?? "", /unsupported protocol file:/);
  const junk = await probe({ health_check_url: "not a url", service_url: "also not" }, {
    ...FAST,
    additionalEndpoints: ["/ready"],
  });
  assert.equal(junk.healthy, false);
  assert.equal(junk.endpoints.length, 2);
  assert.ok(junk.endpoints.every((e) => e.error === "invalid URL"));
});

Deno.test("probe() keeps credentials and query tokens out of its result", async () => {
  const port = await deadPort();
  const r = await probe({
    health_check_url: `http://user:hunter2@127.0.0.1:${port}/health?token=s3cret`,
    service_url: `http://user:hunter2@127.0.0.1:${port}`,
  }, { ...FAST, additionalEndpoints: ["/ready"] });
  const text = JSON.stringify(r);
  assert.equal(r.healthy, false);
  assert.ok(!text.includes("hunter2") && !text.includes("s3cret"), text);
  assert.equal(r.endpoints[0].url, `http://127.0.0.1:${port}/health?token=***`);
});

Deno.test("probe() stops when aborted and reports reason 'aborted'", async () => {
  const { server, base } = stub(() => new Response(null, { status: 500 }));
  try {
    const ctl = new AbortController();
    const s = { ...FAST, maxRetries: 5, initialRetryDelayMs: 5_000, maxRetryDelayMs: 5_000 };
    setTimeout(() => ctl.abort(), 50);
    const t0 = performance.now();
    const r = await probe({ health_check_url: `${base}/health`, service_url: base }, s, ctl.signal);
    assert.equal(r.healthy, false);
    assert.equal(r.reason, "aborted");
    assert.equal(r.attempts, 1);
    assert.ok(performance.now() - t0 < 1000, "the backoff sleep honoured the signal");

    const pre = await probe(
      { health_check_url: `${base}/health`, service_url: base },
      s,
      ctl.signal,
    );
    assert.deepEqual([pre.reason, pre.attempts], ["aborted", 0]);
  } finally {
    await server.shutdown();
  }
});
