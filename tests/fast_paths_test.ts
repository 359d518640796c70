/**
 * The answers the fetch wrapper (routes/app.ts) gives before Hono, reached in-process through
 * the app's fetch handler: the near-cache GET of a configuration entry, the three flag
 * evaluation POSTs (fastEvaluation) and GET /ready. Each test proves the fast path was taken
 * by counting Hono's own dispatches: Hono calls the app's `getPath` exactly once for every
 * request it routes (hono-base `#dispatch`), and the wrapper resolves routes without it
 * (routes/access.ts `requestPath`), so a request answered before Hono leaves the count as it
 * was. Every test first checks that a request Hono does route moves the count, so a Hono that
 * stopped calling `getPath` fails here instead of passing vacuously.
 */
import assert from "node:assert/strict";
import {
  embeddedSettings,
  type InProcessApp,
  PROBLEM,
  send,
  startService,
  tempFile,
  waitFor,
} from "./_helpers.ts";

const CONFIG = "/api/v1/config";
const EVALUATE = "/api/v1/feature-flags/evaluate";

type Service = Awaited<ReturnType<typeof startService>>;

/** Counts the requests Hono dispatches from now on (see the module comment). */
function honoDispatches(app: Service["app"]): { readonly count: number } {
  // `getPath` is readonly in Hono's types only; it is a plain field read on every dispatch.
  const spied = app as unknown as { getPath: typeof app.getPath };
  const getPath = spied.getPath;
  let count = 0;
  spied.getPath = (req, options) => {
    count++;
    return getPath(req, options);
  };
  return {
    get count() {
      return count;
    },
  };
}

type FetchApp = InProcessApp & { fetch: (req: Request) => Response | Promise<Response> };
type Dispatches = { readonly count: number };

/** Sends `req` through the app's fetch handler; asserts Hono dispatched it `hops` times. */
async function through(app: FetchApp, hono: Dispatches, req: Request, hops: 0 | 1) {
  const before = hono.count;
  const res = await app.fetch(req);
  const how = hops === 0 ? "answered before Hono" : "routed by Hono";
  assert.equal(hono.count, before + hops, `${req.method} ${req.url} is ${how}`);
  return res;
}

/** Asserts `req` is answered without a Hono dispatch; returns the answer. */
function fast(app: FetchApp, hono: Dispatches, req: Request): Promise<Response> {
  return through(app, hono, req, 0);
}

/** Asserts Hono routes `req`; returns the answer. */
function routed(app: FetchApp, hono: Dispatches, req: Request): Promise<Response> {
  return through(app, hono, req, 1);
}

/** Asserts a request Hono routes moves the count: the spy sees dispatches. */
async function assertSpyWorks(svc: Service, hono: Dispatches) {
  const live = await routed(svc.app, hono, new Request("http://localhost/live"));
  assert.equal(live.status, 200);
  await live.body?.cancel();
}

Deno.test("GET /api/v1/config/:key is answered from the near cache before Hono, without an actor call", async () => {
  await using svc = await startService(embeddedSettings());
  const hono = honoDispatches(svc.app);
  await assertSpyWorks(svc, hono);
  // The write's change event forgets the near cache's answers for its key when it arrives:
  // wait for it, so it cannot land between the read that fills the cache and the fast one.
  const { promise: announced, resolve: heard } = Promise.withResolvers<void>();
  const unsubscribe = svc.hub.subscribe({ environment: "development" }, () => heard());
  const created = await send(svc.app, "POST", CONFIG, {
    key: "model_path",
    value: "/models/asr",
    environment: "development",
  });
  assert.equal(created.status, 201, await created.text());
  await announced;
  unsubscribe();

  const url = `http://localhost${CONFIG}/model_path?environment=development`;
  // The first read goes through the route: it validates the URL (memo) and fills the near cache.
  const first = await routed(svc.app, hono, new Request(url));
  assert.equal(first.status, 200);
  const etag = first.headers.get("etag");
  const firstBody = await first.json();

  const config = svc.actors.config;
  const get = config.get.bind(config);
  let actorGets = 0;
  config.get = (r) => (actorGets++, get(r));
  const hits = config.nearHits;

  const again = await fast(svc.app, hono, new Request(url, { headers: { "x-request-id": "f-1" } }));
  assert.equal(again.status, 200);
  assert.equal(again.headers.get("x-request-id"), "f-1");
  assert.equal(again.headers.get("etag"), etag);
  assert.deepEqual(await again.json(), firstBody);
  assert.equal(config.nearHits, hits + 1, "answered by the near cache");
  assert.equal(actorGets, 0, "no ConfigActor round trip");

  // The same path answers a conditional GET with 304.
  assert.ok(etag);
  const unchanged = await fast(
    svc.app,
    hono,
    new Request(url, { headers: { "if-none-match": etag } }),
  );
  assert.equal(unchanged.status, 304);
  await unchanged.body?.cancel();

  // ?reveal=true never takes the fast path, whatever the cache holds.
  const reveal = await routed(svc.app, hono, new Request(`${url}&reveal=true`));
  await reveal.body?.cancel();
});

Deno.test("GET /ready pings every actor before Hono", async () => {
  await using svc = await startService(embeddedSettings());
  const hono = honoDispatches(svc.app);
  await assertSpyWorks(svc, hono);
  const pinged: string[] = [];
  for (const actor of Object.values(svc.actors)) {
    const ping = actor.ping.bind(actor);
    actor.ping = () => (pinged.push(actor.name), ping());
  }
  const res = await fast(
    svc.app,
    hono,
    new Request("http://localhost/ready", { headers: { "x-request-id": "r-1" } }),
  );
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-request-id"), "r-1");
  const body = await res.json();
  assert.equal(body.status, "ready");
  const names = Object.values(svc.actors).map((a) => a.name).sort();
  assert.deepEqual(Object.keys(body.actors).sort(), names);
  assert.deepEqual(pinged.sort(), names, "a round trip to every actor after the request came in");
});

Deno.test("POST /api/v1/feature-flags/evaluate{,/boolean,/bulk} are answered before Hono without a FlagActor call, with or without a content-length", async () => {
  const flags = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(
    flags,
    JSON.stringify({
      version: 2,
      features: [{ name: "dark-mode", enabled: true, strategies: [{ name: "default" }] }],
      segments: [],
    }),
  );
  await using svc = await startService(embeddedSettings({ FLAGS_FILE: flags }));
  const hono = honoDispatches(svc.app);
  await assertSpyWorks(svc, hono);
  const client = svc.actors.flags;
  // Every message to the FlagActor but the usage handoff (at most one a second, whatever the
  // load): evaluation runs on the HTTP thread over the actor's published snapshot, so an
  // evaluate must make no actor call at all (DESIGN.md, "Feature flags").
  const call = client.call.bind(client) as (...a: unknown[]) => Promise<unknown>;
  let evaluations = 0;
  (client as { call: unknown }).call = (msg: { type: string }, ...rest: unknown[]) => {
    if (msg.type !== "usage") evaluations++;
    return call(msg, ...rest);
  };

  const cases: [string, unknown, (body: Record<string, unknown>) => void][] = [
    [EVALUATE, { flag_name: "dark-mode", environment: "development" }, (b) => {
      assert.equal(b.value, true);
    }],
    [`${EVALUATE}/boolean`, { flag_name: "dark-mode", environment: "development" }, (b) => {
      assert.equal(b.value, true);
    }],
    [
      `${EVALUATE}/bulk`,
      { flags: [{ flag_name: "dark-mode" }], environment: "development" },
      (b) => {
        assert.equal((b["dark-mode"] as { value: unknown }).value, true);
      },
    ],
  ];
  // The first poll of the flags file runs at start: wait until evaluation sees it.
  await waitFor(
    async () => {
      const r = await send(svc.app, "POST", `${EVALUATE}/boolean`, cases[1][1]);
      return (await r.json()).value === true;
    },
    10_000,
    "the flags file to load",
  );

  // `app.request()` (a Request built from a string) sends no content-length, Deno.serve's
  // requests carry one, and a chunked client sends a stream. The fast path takes the text the
  // wrapper's BodyReader produced, and that reader caps and idle-times-out every body whether
  // or not a length is declared, so the fast path need not (and does not) depend on
  // content-length: all three forms must reach it. The 413s below pin that the cap holds.
  const bodies: Record<string, (json: string) => RequestInit> = {
    "no content-length": (json) => ({ body: json }),
    "a content-length": (json) => ({
      body: json,
      headers: { "content-length": String(new TextEncoder().encode(json).length) },
    }),
    "a streamed body": (json) => ({ body: ReadableStream.from([new TextEncoder().encode(json)]) }),
  };
  for (const [path, body, check] of cases) {
    for (const [form, init] of Object.entries(bodies)) {
      const before = evaluations;
      const given = init(JSON.stringify(body));
      const res = await fast(
        svc.app,
        hono,
        new Request(`http://localhost${path}`, {
          method: "POST",
          ...given,
          headers: { "content-type": "application/json", "x-request-id": "e-1", ...given.headers },
        }),
      );
      const text = await res.text();
      assert.equal(res.status, 200, `${path} with ${form}: ${text}`);
      assert.equal(res.headers.get("x-request-id"), "e-1");
      check(JSON.parse(text));
      assert.equal(evaluations, before, `${path} with ${form}: no FlagActor call`);
    }
  }

  // Over the 1 MiB cap, declared or not, the body is refused before any evaluation.
  const big = JSON.stringify({ flag_name: "dark-mode", pad: "x".repeat(1_100_000) });
  const before = evaluations;
  for (const init of [bodies["no content-length"](big), bodies["a streamed body"](big)]) {
    const res = await fast(
      svc.app,
      hono,
      new Request(`http://localhost${EVALUATE}`, { method: "POST", ...init }),
    );
    assert.equal(res.status, 413);
    assert.equal(res.headers.get("content-type"), PROBLEM);
    await res.body?.cancel();
  }
  assert.equal(evaluations, before, "a refused body is never evaluated");
});

Deno.test("GET discover/{name} and services/{name} are answered before Hono, as the routes answer them", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" }));
  const hono = honoDispatches(svc.app);
  await assertSpyWorks(svc, hono);
  const reg = await send(svc.app, "POST", "/api/v1/registry/register", {
    service_name: "orders",
    service_url: "http://127.0.0.1:9",
    metadata: { instance_id: "orders-1" },
  });
  assert.equal(reg.status, 201);
  await reg.body?.cancel();
  const registry = svc.actors.registry;
  for (const path of ["/api/v1/registry/discover/orders", "/api/v1/registry/services/orders"]) {
    const url = `http://localhost${path}`;
    // Until the HTTP thread holds the answer, the route answers (and the answer is kept).
    const healthy = path.includes("discover");
    await waitFor(
      async () => {
        const r = await routed(svc.app, hono, new Request(url));
        await r.body?.cancel();
        return registry.answerNear("orders", healthy) !== undefined;
      },
      5_000,
      `the answer of ${path} held`,
    );
    const viaRoute = await registry.answer({ service: "orders", healthy_only: healthy });
    const again = await fast(
      svc.app,
      hono,
      new Request(url, { headers: { "x-request-id": "d-1" } }),
    );
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("content-type"), "application/json");
    assert.equal(again.headers.get("x-request-id"), "d-1");
    assert.equal(await again.text(), viaRoute);
  }
  // Names the route refuses or does not know take the route: its 400 and 404 problems.
  const bad = await routed(
    svc.app,
    hono,
    new Request("http://localhost/api/v1/registry/discover/a%20b"),
  );
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get("content-type"), PROBLEM);
  await bad.body?.cancel();
  const unknown = await routed(
    svc.app,
    hono,
    new Request("http://localhost/api/v1/registry/discover/nope"),
  );
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  // A change is seen at once: the held answer is dropped with the change's notice.
  const dereg = await send(svc.app, "POST", "/api/v1/registry/deregister", {
    service_name: "orders",
    instance_id: "orders-1",
  });
  assert.equal(dereg.status, 200);
  await dereg.body?.cancel();
  await waitFor(
    async () => (await svc.app.request("/api/v1/registry/services/orders")).status === 404,
    5_000,
    "gone",
  );
});

Deno.test("the registry fast path is off when the registry is disabled: its routes answer 503", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_REGISTRY_ENABLED: "false" }));
  const res = await svc.app.request("/api/v1/registry/discover/orders");
  assert.equal(res.status, 503);
  await res.body?.cancel();
});
