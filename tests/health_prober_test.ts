import assert from "node:assert/strict";
import { probe, type ProbeSettings, retryDelayMs } from "../lib/health/prober.ts";
import { Scheduler } from "../lib/health/scheduler.ts";

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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

/** Tracks concurrency and per-key overlap of scheduled checks. */
function tracker(checkMs: number) {
  const counts = new Map<string, number>();
  const running = new Set<string>();
  const t = { counts, inFlight: 0, maxInFlight: 0, overlaps: 0 };
  const check = async (key: string) => {
    if (running.has(key)) t.overlaps++;
    running.add(key);
    t.inFlight++;
    t.maxInFlight = Math.max(t.maxInFlight, t.inFlight);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    await sleep(checkMs);
    t.inFlight--;
    running.delete(key);
  };
  return { t, check };
}

Deno.test("Scheduler checks every key each interval with at most `concurrency` in flight", async () => {
  const { t, check } = tracker(30);
  const s = new Scheduler({ intervalMs: 200, concurrency: 3, check });
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  for (const k of keys) s.add(k);
  assert.equal(s.size, 20);
  s.start();
  await sleep(1100);
  await s.stop();
  for (const k of keys) {
    assert.ok((t.counts.get(k) ?? 0) >= 3, `${k} checked ${t.counts.get(k)} times`);
  }
  assert.ok(t.maxInFlight <= 3, `max in flight ${t.maxInFlight}`);
  assert.equal(t.maxInFlight, 3, "the slots were used");
  assert.equal(t.overlaps, 0);
  const st = s.stats();
  assert.equal(st.checks, [...t.counts.values()].reduce((a, b) => a + b, 0));
  assert.deepEqual([st.inFlight, st.queued], [0, 0]);
  assert.ok(st.maxLatenessMs >= 0);
});

Deno.test("Scheduler reschedules a check that outlasts the interval from its end", async () => {
  const spans: [number, number][] = [];
  let running = 0;
  let overlaps = 0;
  const s = new Scheduler({
    intervalMs: 50,
    concurrency: 4,
    jitter: 0,
    check: async () => {
      if (running++) overlaps++;
      const start = performance.now();
      await sleep(150);
      spans.push([start, performance.now()]);
      running--;
    },
  });
  s.add("slow");
  s.start();
  await sleep(700);
  await s.stop();
  assert.equal(overlaps, 0);
  assert.ok(spans.length >= 2 && spans.length <= 5, `${spans.length} checks`);
  for (let i = 1; i < spans.length; i++) {
    const gap = spans[i][0] - spans[i - 1][1];
    assert.ok(gap >= 45, `next check started ${gap} ms after the previous ended`);
  }
});

Deno.test("Scheduler.remove() stops a key's checks", async () => {
  const { t, check } = tracker(5);
  const s = new Scheduler({ intervalMs: 40, concurrency: 2, check });
  s.add("a");
  s.add("b");
  s.start();
  await sleep(200);
  s.remove("a");
  assert.equal(s.has("a"), false);
  assert.equal(s.size, 1);
  await sleep(20); // a check of "a" already running may finish
  const frozen = t.counts.get("a") ?? 0;
  const before = t.counts.get("b") ?? 0;
  await sleep(200);
  await s.stop();
  assert.ok(frozen >= 2);
  assert.equal(t.counts.get("a"), frozen);
  assert.ok((t.counts.get("b") ?? 0) > before, "the other key kept being checked");
});

Deno.test("Scheduler.runNow() on a running key waits for it instead of running twice", async () => {
  let calls = 0;
  const gate = Promise.withResolvers<void>();
  const s = new Scheduler({
    intervalMs: 60_000,
    concurrency: 2,
    check: async () => {
      calls++;
      await gate.promise;
    },
  });
  s.add("k");
  const first = s.runNow("k");
  const second = s.runNow("k");
  let secondDone = false;
  second.then(() => secondDone = true);
  await sleep(20);
  assert.equal(calls, 1);
  assert.equal(secondDone, false, "the second caller waits for the running check");
  assert.equal(s.stats().inFlight, 1);
  gate.resolve();
  await Promise.all([first, second]);
  assert.equal(calls, 1);

  // Once finished, a new manual trigger runs a fresh check.
  await s.runNow("k");
  assert.equal(calls, 2);
  await s.stop();
});

Deno.test("Scheduler.runNow() takes the next free slot ahead of queued scheduled checks", async () => {
  const order: string[] = [];
  const gate = Promise.withResolvers<void>();
  const s = new Scheduler({
    intervalMs: 20,
    concurrency: 1,
    check: async (key) => {
      order.push(key);
      if (key === "busy") await gate.promise;
    },
  });
  s.add("s1");
  s.add("s2");
  s.start();
  const busy = s.runNow("busy");
  await sleep(40); // s1 and s2 come due and queue behind the busy slot
  assert.deepEqual(s.stats(), { checks: 1, maxLatenessMs: 0, inFlight: 1, queued: 2 });
  const urgent = s.runNow("urgent");
  assert.equal(s.stats().queued, 3);
  gate.resolve();
  await Promise.all([busy, urgent]);
  while (s.stats().checks < 4) await sleep(1); // then the queued scheduled ones
  await s.stop();
  assert.deepEqual(order.slice(0, 2), ["busy", "urgent"]);
  assert.deepEqual(order.slice(2, 4).sort(), ["s1", "s2"]);
  assert.equal(s.has("urgent"), false, "a manual run does not add the key");
  assert.ok(s.stats().maxLatenessMs > 0, "the queued checks started after their due time");
});

Deno.test("Scheduler.stop() waits for running checks and leaves no timers behind", async () => {
  let finished = 0;
  let started = 0;
  const s = new Scheduler({
    intervalMs: 30,
    concurrency: 8,
    check: async () => {
      started++;
      await sleep(80);
      finished++;
    },
  });
  for (let i = 0; i < 8; i++) s.add(`k${i}`);
  s.start();
  while (s.stats().inFlight === 0) await sleep(5);
  await s.stop();
  assert.equal(s.stats().inFlight, 0);
  assert.equal(finished, started, "every started check finished before stop() resolved");
  await sleep(100);
  assert.equal(started, finished, "nothing ran after stop()");
  assert.equal(s.size, 8, "keys stay added for a later start()");
});

Deno.test("Scheduler keeps a check that throws from breaking the schedule", async () => {
  let calls = 0;
  const s = new Scheduler({
    intervalMs: 20,
    concurrency: 1,
    check: () => {
      calls++;
      return Promise.reject(new Error("boom"));
    },
  });
  const { log } = await import("../lib/log.ts");
  const lines: string[] = [];
  log.setSink((line) => lines.push(line));
  try {
    s.add("k");
    s.start();
    await sleep(150);
    await s.stop();
  } finally {
    log.setSink(null);
  }
  assert.ok(calls >= 3, `${calls} calls`);
  assert.ok(lines.some((l) => l.includes("boom")));
});

Deno.test("Scheduler checks 10,000 keys with a single timer", async () => {
  const seen = new Set<string>();
  const s = new Scheduler({
    intervalMs: 300,
    concurrency: 64,
    check: (key) => {
      seen.add(key);
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 10_000; i++) s.add(`i${i}`);
  s.start();
  await sleep(450);
  await s.stop();
  assert.equal(seen.size, 10_000);
  assert.ok(s.stats().checks >= 10_000);
});

Deno.test("Scheduler rejects an unusable interval or concurrency", () => {
  const check = () => Promise.resolve();
  assert.throws(() => new Scheduler({ intervalMs: 0, concurrency: 1, check }), RangeError);
  assert.throws(() => new Scheduler({ intervalMs: 10, concurrency: 0, check }), RangeError);
});
