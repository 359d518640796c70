import assert from "node:assert/strict";
import {
  embeddedSettings,
  PROBLEM,
  registerInstance,
  send,
  serverTest,
  stackSettings,
  startService,
  stubInstance,
  waitFor,
} from "./_helpers.ts";
import { ZkSession } from "../lib/backends/zookeeper.ts";
import { dropBasePath, openZk, startOnZookeeper } from "./_zk.ts";

const FAST = {
  SERVICE_HEALTH_CHECK_INTERVAL: "0.2",
  HEALTH_CHECK_TIMEOUT: "0.5",
  HEALTH_CHECK_MAX_RETRIES: "0",
  HEALTH_CHECK_INITIAL_RETRY_DELAY: "0.01",
};

type Start = (over?: Record<string, string>) => ReturnType<typeof startService>;

/**
 * Registers `fn` for the embedded registry and, when ZooKeeper is configured, for the
 * ZooKeeper registry (its own base path; the service is started once the session is open).
 */
function bothRegistries(name: string, fn: (start: Start) => Promise<void>): void {
  Deno.test(`embedded: ${name}`, () => fn((over = {}) => startService(embeddedSettings(over))));
  serverTest(
    "zookeeper registry routes",
    ["ZOOKEEPER_HOSTS"],
    name,
    () =>
      fn((over = {}) => startOnZookeeper(`/cs-t-routes-${crypto.randomUUID().slice(0, 8)}`, over)),
  );
}

async function json(res: Response) {
  return { status: res.status, type: res.headers.get("content-type"), body: await res.json() };
}

bothRegistries(
  "POST /api/v1/registry/register answers the seed's shape: 201 new, 200 again",
  async (start) => {
    await using svc = await start(FAST);
    const inst = stubInstance();
    try {
      const reg = {
        service_name: "asr-service",
        service_url: inst.url,
        health_check_url: `${inst.url}/health`,
        metadata: { instance_id: "asr-service-1", version: "1.0.0" },
      };
      const first = await json(await send(svc.app, "POST", "/api/v1/registry/register", reg));
      assert.equal(first.status, 201);
      assert.deepEqual(first.body, {
        instance_id: "asr-service-1",
        service_name: "asr-service",
        service_url: inst.url,
        status: "registered",
      });
      const again = await send(svc.app, "POST", "/api/v1/registry/register", reg);
      assert.equal(again.status, 200);
      await again.body?.cancel();
    } finally {
      await inst.server.shutdown();
    }
  },
);

bothRegistries(
  "a live instance becomes healthy and a dead one unhealthy; discover and url use healthy only",
  async (start) => {
    await using svc = await start(FAST);
    const live = stubInstance();
    const dead = stubInstance();
    const deadUrl = dead.url;
    await dead.server.shutdown();
    try {
      for (const [id, url] of [["live-1", live.url], ["dead-1", deadUrl]]) {
        const r = await send(svc.app, "POST", "/api/v1/registry/register", {
          service_name: "svc-a",
          service_url: url,
          metadata: { instance_id: id },
        });
        assert.equal(r.status, 201);
        await r.body?.cancel();
      }
      const inst = await waitFor(
        async () => {
          const b = (await json(await svc.app.request("/api/v1/registry/services/svc-a"))).body;
          const st = Object.fromEntries(
            b.instances.map((
              i: { instance_id: string; status: string },
            ) => [i.instance_id, i.status]),
          );
          return st["live-1"] === "healthy" && st["dead-1"] === "unhealthy" ? b : null;
        },
        10_000,
        "statuses",
      );
      assert.equal(inst.service_name, "svc-a");
      assert.ok(
        inst.instances.every((i: { last_health_check: string | null }) => i.last_health_check),
      );
      const disc = (await json(await svc.app.request("/api/v1/registry/discover/svc-a"))).body;
      assert.deepEqual(disc.instances.map((i: { instance_id: string }) => i.instance_id), [
        "live-1",
      ]);
      const url = (await json(await svc.app.request("/api/v1/registry/services/svc-a/url"))).body;
      assert.deepEqual(url, { service_name: "svc-a", url: live.url, instance_id: "live-1" });
      const list = (await json(await svc.app.request("/api/v1/registry/services"))).body;
      assert.equal(list[0].service_name, "svc-a");
      assert.equal(list[0].instances.length, 2);
    } finally {
      await live.server.shutdown();
    }
  },
);

bothRegistries(
  "POST /api/v1/registry/services/:name/health checks now and counts the outcomes",
  async (start) => {
    await using svc = await start({ ...FAST, SERVICE_HEALTH_CHECK_ENABLED: "false" });
    const ok = stubInstance();
    const failing = stubInstance({ ready: () => 500 });
    try {
      for (const [id, url] of [["ok-1", ok.url], ["bad-1", failing.url]]) {
        const r = await send(svc.app, "POST", "/api/v1/registry/register", {
          service_name: "svc-h",
          service_url: url,
          metadata: { instance_id: id },
        });
        await r.body?.cancel();
      }
      const res = await json(
        await send(svc.app, "POST", "/api/v1/registry/services/svc-h/health", {}),
      );
      assert.equal(res.status, 200);
      // A failing additional endpoint (/ready 500) is unhealthy; a 404 one (/live) is not.
      assert.deepEqual(res.body, {
        service_name: "svc-h",
        instances_checked: 2,
        healthy_instances: 1,
        unhealthy_instances: 1,
      });
      const b = (await json(await svc.app.request("/api/v1/registry/services/svc-h"))).body;
      const st = Object.fromEntries(
        b.instances.map((i: { instance_id: string; status: string }) => [i.instance_id, i.status]),
      );
      assert.deepEqual(st, { "ok-1": "healthy", "bad-1": "unhealthy" });
    } finally {
      await ok.server.shutdown();
      await failing.server.shutdown();
    }
  },
);

bothRegistries(
  "services and services/{name} show the last check's latency (null before it); discover does not",
  async (start) => {
    await using svc = await start({
      ...FAST,
      SERVICE_HEALTH_CHECK_ENABLED: "false",
      HEALTH_CHECK_TIMEOUT: "3",
    });
    // /health answers at once, /ready (an additional endpoint, probed in the same round) late:
    // the check's latency is its slowest endpoint's.
    const DELAY_MS = 150;
    await using slow = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/ready") await new Promise((r) => setTimeout(r, DELAY_MS));
        return new Response("ok", { status: path === "/health" || path === "/ready" ? 200 : 404 });
      },
    );
    const r = await send(svc.app, "POST", "/api/v1/registry/register", {
      service_name: "svc-l",
      service_url: `http://127.0.0.1:${slow.addr.port}`,
      metadata: { instance_id: "l-1" },
    });
    assert.equal(r.status, 201);
    await r.body?.cancel();
    type View = { status: string; last_health_check: string | null } & Record<string, unknown>;
    const one = async (path: string): Promise<View> =>
      (await json(await svc.app.request(path))).body.instances[0];
    const before = await one("/api/v1/registry/services/svc-l");
    assert.equal(before.status, "registered");
    assert.equal(before.last_check_latency_ms, null, "no check yet");

    const checked = await json(
      await send(svc.app, "POST", "/api/v1/registry/services/svc-l/health", {}),
    );
    assert.equal(checked.body.healthy_instances, 1);
    const after = await one("/api/v1/registry/services/svc-l");
    assert.equal(after.status, "healthy");
    const ms = after.last_check_latency_ms as number;
    assert.equal(typeof ms, "number");
    assert.ok(ms >= DELAY_MS, `latency ${ms} ms covers /ready's ${DELAY_MS} ms`);
    assert.ok(ms < 3_000, `latency ${ms} ms is under the timeout`);
    assert.equal(ms, Math.round(ms * 10) / 10, "in 0.1 ms steps");
    const listed = (await json(await svc.app.request("/api/v1/registry/services"))).body;
    assert.equal(listed[0].instances[0].last_check_latency_ms, ms);
    // discover answers as it did: the same fields, none for the latency.
    const found = await one("/api/v1/registry/discover/svc-l");
    assert.deepEqual(Object.keys(found), [
      "instance_id",
      "service_url",
      "health_check_url",
      "status",
      "last_health_check",
      "metadata",
      "source",
    ]);
    assert.equal(found.last_health_check, after.last_health_check);
  },
);

bothRegistries("deregister removes an instance; unknown ones are 404 problems", async (start) => {
  await using svc = await start(FAST);
  const r = await send(svc.app, "POST", "/api/v1/registry/register", {
    service_name: "svc-d",
    service_url: "http://127.0.0.1:9",
    metadata: { instance_id: "d-1" },
  });
  await r.body?.cancel();
  const del = await json(
    await send(svc.app, "POST", "/api/v1/registry/deregister", {
      service_name: "svc-d",
      instance_id: "d-1",
    }),
  );
  assert.deepEqual(del, {
    status: 200,
    type: "application/json",
    body: { service_name: "svc-d", instance_id: "d-1", status: "deregistered" },
  });
  const again = await json(
    await send(svc.app, "POST", "/api/v1/registry/deregister", {
      service_name: "svc-d",
      instance_id: "d-1",
    }),
  );
  assert.equal(again.status, 404);
  assert.equal(again.type, PROBLEM);
  for (
    const p of [
      "/api/v1/registry/services/svc-d",
      "/api/v1/registry/discover/svc-d",
      "/api/v1/registry/services/svc-d/url",
    ]
  ) {
    const res = await json(await svc.app.request(p));
    assert.equal(res.status, 404, p);
    assert.equal(res.type, PROBLEM);
  }
});

bothRegistries("url answers 503 when no instance is healthy", async (start) => {
  await using svc = await start({ ...FAST, SERVICE_HEALTH_CHECK_ENABLED: "false" });
  const r = await send(svc.app, "POST", "/api/v1/registry/register", {
    service_name: "svc-u",
    service_url: "http://127.0.0.1:9",
  });
  await r.body?.cancel();
  const res = await json(await svc.app.request("/api/v1/registry/services/svc-u/url"));
  assert.equal(res.status, 503);
  assert.equal(res.type, PROBLEM);
});

bothRegistries(
  "registering link-local or metadata addresses is a 400 naming the field",
  async (start) => {
    await using svc = await start(FAST);
    for (
      const [field, body] of [
        ["service_url", { service_name: "x", service_url: "http://169.254.169.254/latest" }],
        ["health_check_url", {
          service_name: "x",
          service_url: "http://127.0.0.1:9",
          health_check_url: "http://[fd00:ec2::254]/",
        }],
        ["service_url", { service_name: "x", service_url: "ftp://example" }],
        ["service_name", { service_name: "bad name", service_url: "http://127.0.0.1:9" }],
      ] as const
    ) {
      const res = await json(await send(svc.app, "POST", "/api/v1/registry/register", body));
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.type, PROBLEM);
      assert.ok(
        res.body.errors.some((e: { field: string }) => e.field === field),
        `${field} named in ${JSON.stringify(res.body.errors)}`,
      );
    }
  },
);

Deno.test("registrations survive a restart of the service (durable records), with their last check", async () => {
  const settings = embeddedSettings({ ...FAST, SERVICE_HEALTH_CHECK_ENABLED: "false" });
  let checked: Record<string, unknown>;
  {
    await using svc = await startService(settings);
    const r = await send(svc.app, "POST", "/api/v1/registry/register", {
      service_name: "svc-r",
      service_url: "http://127.0.0.1:9",
      metadata: { instance_id: "r-1", zone: "a" },
    });
    assert.equal(r.status, 201);
    await r.body?.cancel();
    const check = await send(svc.app, "POST", "/api/v1/registry/services/svc-r/health", {});
    assert.equal(check.status, 200);
    await check.body?.cancel();
    checked = (await json(await svc.app.request("/api/v1/registry/services/svc-r"))).body
      .instances[0];
    assert.equal(checked.status, "unhealthy");
    assert.equal(typeof checked.last_check_latency_ms, "number");
  }
  await using again = await startService(settings);
  const b = (await json(await again.app.request("/api/v1/registry/services/svc-r"))).body;
  assert.equal(b.instances[0].instance_id, "r-1");
  assert.equal(b.instances[0].metadata.zone, "a");
  assert.deepEqual(
    [b.instances[0].last_health_check, b.instances[0].last_check_latency_ms],
    [checked.last_health_check, checked.last_check_latency_ms],
  );
});

Deno.test("SERVICE_REGISTRY_ENABLED=false answers registry endpoints with 503 problem JSON", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_REGISTRY_ENABLED: "false" }));
  const res = await json(await svc.app.request("/api/v1/registry/services"));
  assert.equal(res.status, 503);
  assert.equal(res.type, PROBLEM);
});

serverTest(
  "zookeeper registry",
  ["ZOOKEEPER_HOSTS"],
  "register writes an ephemeral znode with Curator's JSON; deregister removes it; a restart re-creates it",
  async () => {
    const base = `/cs-test-${crypto.randomUUID().slice(0, 8)}`;
    const settings = stackSettings({
      ...FAST,
      DATABASE_URL: "",
      KAFKA_BOOTSTRAP_SERVERS: "",
      UNLEASH_URL: "",
      REDIS_HOST: "",
      ZOOKEEPER_BASE_PATH: base,
      ZOOKEEPER_SESSION_TIMEOUT: "6",
      SERVICE_HEALTH_CHECK_ENABLED: "false",
    });
    const zk = new ZkSession(Deno.env.get("ZOOKEEPER_HOSTS")!, {
      sessionTimeoutMs: 10_000,
      connectTimeoutMs: 10_000,
    });
    await zk.connect();
    try {
      {
        await using svc = await startService(settings);
        await waitFor(
          async () => {
            const h = await (await svc.app.request("/health")).json();
            return h.backends.registry?.status === "up";
          },
          10_000,
          "zookeeper up",
        );
        const r = await send(svc.app, "POST", "/api/v1/registry/register", {
          service_name: "asr-service",
          service_url: "http://127.0.0.1:8087",
          metadata: { instance_id: "asr-1", version: "1.0.0" },
        });
        assert.equal(r.status, 201);
        await r.body?.cancel();
        const data = JSON.parse((await zk.getData(`${base}/asr-service/asr-1`))!);
        assert.equal(data.name, "asr-service");
        assert.equal(data.id, "asr-1");
        assert.equal(data.address, "127.0.0.1");
        assert.equal(data.port, 8087);
        assert.equal(data.serviceType, "DYNAMIC");
        assert.equal(
          data.payload["@class"],
          "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
        );
        assert.equal(data.payload.metadata.version, "1.0.0");
        assert.notEqual(await zk.owner(`${base}/asr-service/asr-1`), "", "ephemeral");
        const r2 = await send(svc.app, "POST", "/api/v1/registry/register", {
          service_name: "asr-service",
          service_url: "http://127.0.0.1:8088",
          metadata: { instance_id: "asr-2" },
        });
        await r2.body?.cancel();
        const d = await send(svc.app, "POST", "/api/v1/registry/deregister", {
          service_name: "asr-service",
          instance_id: "asr-2",
        });
        assert.equal(d.status, 200);
        await d.body?.cancel();
        assert.deepEqual(await zk.getChildren(`${base}/asr-service`), ["asr-1"]);
      }
      // Stopped gracefully: its session closed, so the ephemeral is gone at once.
      await waitFor(async () => (await zk.getChildren(`${base}/asr-service`)).length === 0, 5_000);
      // Restarted on the same durable records: the ephemeral is back.
      await using again = await startService(settings);
      await waitFor(
        async () => (await zk.getChildren(`${base}/asr-service`)).includes("asr-1"),
        10_000,
        "znode re-created after restart",
      );
      void again;
    } finally {
      zk.close();
    }
  },
);

serverTest(
  "kafka registry events",
  ["KAFKA_BOOTSTRAP_SERVERS"],
  "registration, health transitions and deregistration are published to REGISTRY_KAFKA_TOPIC",
  async () => {
    const { createKafka } = await import("../lib/backends/kafka.ts");
    const topic = `cs-t-registry-${crypto.randomUUID().slice(0, 8)}`;
    const kafka = createKafka(Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!, "registry-test");
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const consumer = kafka.consumer({ groupId: `${topic}-g` });
    const seen: { type: string; instance_id: string; status: string }[] = [];
    const live = stubInstance();
    try {
      await using svc = await startService(embeddedSettings({
        ...FAST,
        KAFKA_BOOTSTRAP_SERVERS: Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!,
        REGISTRY_KAFKA_TOPIC: topic,
      }));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) =>
          Promise.resolve(void seen.push(JSON.parse(String(message.value)))),
      });
      const r = await send(svc.app, "POST", "/api/v1/registry/register", {
        service_name: "svc-k",
        service_url: live.url,
        metadata: { instance_id: "k-1" },
      });
      assert.equal(r.status, 201);
      await r.body?.cancel();
      await waitFor(() => seen.some((e) => e.type === "healthy"), 20_000, "healthy event");
      const d = await send(svc.app, "POST", "/api/v1/registry/deregister", {
        service_name: "svc-k",
        instance_id: "k-1",
      });
      await d.body?.cancel();
      await waitFor(
        () => seen.some((e) => e.type === "deregistered"),
        20_000,
        "deregistered event",
      );
      assert.deepEqual(
        seen.filter((e) => e.instance_id === "k-1").map((e) => e.type),
        ["registered", "healthy", "deregistered"],
      );
    } finally {
      await live.server.shutdown();
      await consumer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  },
);

bothRegistries(
  "GET .../url alternates round robin, and weights 1:3 split 400 calls 20-30 % / 70-80 %",
  async (start) => {
    await using svc = await start({ ...FAST, SERVICE_HEALTH_CHECK_ENABLED: "false" });
    const a = stubInstance();
    const b = stubInstance();
    try {
      const reg = async (service: string, id: string, url: string, weight?: string) => {
        const r = await send(svc.app, "POST", "/api/v1/registry/register", {
          service_name: service,
          service_url: url,
          metadata: { instance_id: id, ...(weight ? { weight } : {}) },
        });
        assert.ok(r.status === 201 || r.status === 200);
        await r.body?.cancel();
      };
      await reg("rr", "a", a.url);
      await reg("rr", "b", b.url);
      await reg("wt", "light", a.url, "1");
      await reg("wt", "heavy", b.url, "3");
      for (const s of ["rr", "wt"]) {
        const h = await json(
          await send(svc.app, "POST", `/api/v1/registry/services/${s}/health`, {}),
        );
        assert.equal(h.body.healthy_instances, 2);
      }
      const picks: string[] = [];
      for (let i = 0; i < 4; i++) {
        picks.push(
          (await json(await svc.app.request("/api/v1/registry/services/rr/url"))).body.instance_id,
        );
      }
      assert.notEqual(picks[0], picks[1]);
      assert.deepEqual(picks.slice(2), picks.slice(0, 2), `alternates: ${picks}`);
      const counts: Record<string, number> = { light: 0, heavy: 0 };
      for (let i = 0; i < 400; i++) {
        counts[
          (await json(await svc.app.request("/api/v1/registry/services/wt/url"))).body.instance_id
        ]++;
      }
      assert.ok(counts.light >= 80 && counts.light <= 120, `light ${counts.light}/400`);
      assert.ok(counts.heavy >= 280 && counts.heavy <= 320, `heavy ${counts.heavy}/400`);
    } finally {
      await a.server.shutdown();
      await b.server.shutdown();
    }
  },
);

Deno.test("POST /api/v1/registry/register refuses a metadata number that would not read back", async () => {
  await using svc = await startService(embeddedSettings());
  const res = await svc.app.request("/api/v1/registry/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"service_name":"big","service_url":"http://127.0.0.1:1",' +
      '"metadata":{"id":12345678901234567890,"inf":1e400,"ok":7}}',
  });
  assert.equal(res.status, 400);
  const p = await res.json();
  assert.deepEqual(p.errors.map((e: { field: string }) => e.field).sort(), [
    "metadata.id",
    "metadata.inf",
  ]);
  const list = await (await svc.app.request("/api/v1/registry/services")).json();
  assert.equal(JSON.stringify(list).includes('"big"'), false, "nothing registered");
});

Deno.test("POST …/services/{name}/health answers after one attempt, not after the retries", async () => {
  // Retries with backoff (1 s, then 2 s, 4 s) would keep a check of a failing instance busy
  // for seconds; a check asked for now makes one attempt: the instance sees one request.
  let requests = 0;
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response("down", { status: 500 });
  });
  await using svc = await startService(embeddedSettings({
    SERVICE_HEALTH_CHECK_ENABLED: "false",
    HEALTH_CHECK_ADDITIONAL_ENDPOINTS: "",
    HEALTH_CHECK_TIMEOUT: "0.5",
    HEALTH_CHECK_MAX_RETRIES: "3",
    HEALTH_CHECK_INITIAL_RETRY_DELAY: "1",
  }));
  await registerInstance(svc.app, {
    service_name: "failing",
    service_url: `http://127.0.0.1:${server.addr.port}`,
  });
  const res = await svc.app.request("/api/v1/registry/services/failing/health", {
    method: "POST",
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    service_name: "failing",
    instances_checked: 1,
    healthy_instances: 0,
    unhealthy_instances: 1,
  });
  assert.equal(requests, 1);
});

serverTest(
  "zookeeper registry",
  ["ZOOKEEPER_HOSTS"],
  "the znode says enabled and instance_status as discover sees the instance, at every change",
  async () => {
    const base = `/cs-test-${crypto.randomUUID().slice(0, 8)}`;
    let code = 500;
    const stub = stubInstance({ health: () => code });
    await using svc = await startOnZookeeper(base, FAST);
    const zk = await openZk();
    try {
      const r = await send(svc.app, "POST", "/api/v1/registry/register", {
        service_name: "svc-z",
        service_url: stub.url,
        metadata: { instance_id: "z-1" },
      });
      assert.equal(r.status, 201);
      await r.body?.cancel();
      const znode = async () => {
        const d = JSON.parse((await zk.getData(`${base}/svc-z/z-1`))!);
        return `${d.enabled}/${d.payload.metadata.instance_status}/${d.payload.metadata.status}`;
      };
      // Unhealthy: Curator's filter (enabled) and Spring's (instance_status) both leave it out.
      await waitFor(
        async () => (await znode()) === "false/OUT_OF_SERVICE/unhealthy" ? true : null,
        10_000,
        "unhealthy in the znode",
      );
      code = 200;
      await waitFor(
        async () => (await znode()) === "true/UP/healthy" ? true : null,
        10_000,
        "healthy in the znode",
      );
    } finally {
      zk.close();
      await stub.server.shutdown();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "zookeeper registry",
  ["ZOOKEEPER_HOSTS"],
  "the last instance deregistered takes its service parent with it; others' instances keep it",
  async () => {
    const base = `/cs-test-${crypto.randomUUID().slice(0, 8)}`;
    await using svc = await startOnZookeeper(base, { SERVICE_HEALTH_CHECK_ENABLED: "false" });
    const zk = await openZk();
    const call = async (path: string, body: unknown) => {
      const r = await send(svc.app, "POST", path, body);
      await r.body?.cancel();
      return r.status;
    };
    try {
      for (const id of ["p-1", "p-2"]) {
        assert.equal(
          await call("/api/v1/registry/register", {
            service_name: "svc-p",
            service_url: "http://127.0.0.1:9",
            metadata: { instance_id: id },
          }),
          201,
        );
      }
      const dereg = (id: string) =>
        call("/api/v1/registry/deregister", { service_name: "svc-p", instance_id: id });
      assert.equal(await dereg("p-1"), 200);
      assert.equal(await zk.exists(`${base}/svc-p`), true, "one instance left");
      assert.equal(await dereg("p-2"), 200);
      assert.equal(await zk.exists(`${base}/svc-p`), false, "the empty parent is gone");
      // A parent that holds an instance someone else registered (Curator, say) stays.
      assert.equal(
        await call("/api/v1/registry/register", {
          service_name: "svc-q",
          service_url: "http://127.0.0.1:9",
          metadata: { instance_id: "q-1" },
        }),
        201,
      );
      await zk.create(`${base}/svc-q/foreign-1`, "{}");
      assert.equal(
        await call("/api/v1/registry/deregister", { service_name: "svc-q", instance_id: "q-1" }),
        200,
      );
      assert.deepEqual(await zk.getChildren(`${base}/svc-q`), ["foreign-1"]);
      // Registering again after the parent went: it is made again.
      assert.equal(
        await call("/api/v1/registry/register", {
          service_name: "svc-p",
          service_url: "http://127.0.0.1:9",
          metadata: { instance_id: "p-3" },
        }),
        201,
      );
      assert.deepEqual(await zk.getChildren(`${base}/svc-p`), ["p-3"]);
    } finally {
      zk.close();
      await dropBasePath(base);
    }
  },
);
