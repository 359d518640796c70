/**
 * Instances that others registered in ZooKeeper (Curator x-discovery, Spring Cloud
 * Zookeeper): how their znodes read (pure), and, against the real ZooKeeper, that they are
 * listed, health-checked, discovered when healthy, never modified, and leave with their znode.
 * The real Curator and Spring clients are in the Java interop suite (interop/java).
 */
import assert from "node:assert/strict";
import { PROBLEM, send, serverTest, waitFor } from "./_helpers.ts";
import { apiInstance, dropBasePath, openRegistry, openZk, startOnZookeeper } from "./_zk.ts";
import { classifyZnode, MAX_INSTANCE_JSON } from "../lib/registry/foreign.ts";
import { curatorJson, type Instance } from "../lib/registry/model.ts";
import { ForeignWatch } from "../lib/registry/zookeeper_watch.ts";
import { CreateMode } from "../lib/backends/zookeeper.ts";

const SPRING_CLASS = "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance";
const URI_SPEC = {
  parts: [
    { value: "scheme", variable: true },
    { value: "://", variable: false },
    { value: "address", variable: true },
    { value: ":", variable: false },
    { value: "port", variable: true },
  ],
};

/** A znode as Spring Cloud Zookeeper 4.3 writes it (Curator's ServiceInstance JSON). */
function springZnode(
  name: string,
  id: string,
  port: number,
  metadata: Record<string, string> = { instance_status: "UP" },
  over: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    name,
    id,
    address: "127.0.0.1",
    port,
    sslPort: null,
    payload: { "@class": SPRING_CLASS, id: `${name}-1`, name, metadata },
    registrationTimeUTC: 1_764_000_000_000,
    serviceType: "DYNAMIC",
    uriSpec: URI_SPEC,
    ...over,
  });
}

function foreign(json: string, service = "orders", id = "a1b2", path = "/actuator/health") {
  const k = classifyZnode(service, id, json, path);
  assert.equal(k.kind, "foreign", JSON.stringify(k));
  return (k as { instance: Instance }).instance;
}

Deno.test("a Spring Cloud Zookeeper znode reads as a foreign instance", () => {
  const i = foreign(springZnode("orders", "a1b2", 8080, { instance_status: "UP", zone: "z1" }));
  assert.deepEqual(i, {
    service_name: "orders",
    instance_id: "a1b2",
    service_url: "http://127.0.0.1:8080",
    health_check_url: "http://127.0.0.1:8080/actuator/health",
    metadata: { instance_status: "UP", zone: "z1" },
    status: "registered",
    last_health_check: null,
    registered_at: new Date(1_764_000_000_000).toISOString(),
    ttl_seconds: null,
    last_heartbeat: null,
    unhealthy_since: null,
    source: "zookeeper",
    disabled: false,
  });
});

Deno.test("a Curator znode: scheme from sslPort, IPv6 in brackets, uriSpec paths, health path", () => {
  // Curator without uriSpec, with a plain string payload.
  const plain = foreign(JSON.stringify({
    name: "orders",
    id: "x",
    address: "10.0.0.7",
    port: null,
    sslPort: 8443,
    payload: "hello",
    serviceType: "DYNAMIC",
  }));
  assert.equal(plain.service_url, "https://10.0.0.7:8443");
  assert.deepEqual(plain.metadata, {});
  assert.equal(plain.registered_at, new Date(0).toISOString());
  const v6 = foreign(springZnode("orders", "x", 9000, {}, { address: "::1" }));
  assert.equal(v6.service_url, "http://[::1]:9000");
  const withPath = foreign(
    springZnode("orders", "x", 9000, {}, {
      uriSpec: { parts: [...URI_SPEC.parts, { value: "/api", variable: false }] },
    }),
    "orders",
    "x",
    "/healthz",
  );
  assert.equal(withPath.service_url, "http://127.0.0.1:9000/api");
  assert.equal(withPath.health_check_url, "http://127.0.0.1:9000/api/healthz");
  // metadata.health_check_url, when it is an http(s) URL, wins.
  const own = foreign(springZnode("orders", "x", 9000, { health_check_url: "http://h:1/hc" }));
  assert.equal(own.health_check_url, "http://h:1/hc");
  const bad = foreign(springZnode("orders", "x", 9000, { health_check_url: "file:///etc" }));
  assert.equal(bad.health_check_url, "http://127.0.0.1:9000/actuator/health");
  // Spring's uriSpec names {port}; an https-only instance has none: not `https://host:`.
  const sslOnly = foreign(springZnode("orders", "x", 9000, {}, { port: null, sslPort: 8443 }));
  assert.equal(sslOnly.service_url, "https://127.0.0.1:8443");
  // A uriSpec building a URL over 2048 characters falls back too.
  const long = foreign(springZnode("orders", "x", 9000, {}, {
    uriSpec: { parts: [...URI_SPEC.parts, { value: `/${"a".repeat(3000)}`, variable: false }] },
  }));
  assert.equal(long.service_url, "http://127.0.0.1:9000");
  // A uriSpec that builds no http(s) URL falls back to scheme://address:port.
  const odd = foreign(springZnode("orders", "x", 9000, {}, {
    uriSpec: { parts: [{ value: "ftp://x", variable: false }] },
  }));
  assert.equal(odd.service_url, "http://127.0.0.1:9000");
});

Deno.test("an owner's out-of-service mark: enabled false, or instance_status other than UP", () => {
  assert.equal(foreign(springZnode("o", "x", 1, { instance_status: "UP" })).disabled, false);
  assert.equal(foreign(springZnode("o", "x", 1, {})).disabled, false);
  assert.equal(foreign(springZnode("o", "x", 1, {}, { enabled: true })).disabled, false);
  assert.equal(foreign(springZnode("o", "x", 1, {}, { enabled: false })).disabled, true);
  // Jackson, which Curator reads with, takes the string "false" as false too.
  assert.equal(foreign(springZnode("o", "x", 1, {}, { enabled: "false" })).disabled, true);
  const oos = { instance_status: "OUT_OF_SERVICE" };
  assert.equal(foreign(springZnode("o", "x", 1, oos)).disabled, true);
});

Deno.test("our own znodes are ours; anything that is no instance is invalid, with a reason", () => {
  const ours = curatorJson({ ...apiInstance("orders", "o-1"), status: "healthy" });
  assert.deepEqual(classifyZnode("orders", "o-1", ours, "/h"), { kind: "ours" });
  const invalid = (json: string, service = "orders", id = "x") => {
    const k = classifyZnode(service, id, json, "/h");
    assert.equal(k.kind, "invalid", `${json.slice(0, 80)} → ${JSON.stringify(k)}`);
    return (k as { reason: string }).reason;
  };
  assert.match(invalid(""), /not JSON/);
  assert.match(invalid("[1]"), /no address/);
  assert.match(invalid(springZnode("orders", "x", 0)), /neither port/);
  assert.match(invalid(springZnode("orders", "x", 70_000)), /neither port/);
  assert.match(invalid(springZnode("orders", "x", 1, {}, { address: "a b" })), /no host/);
  // Nothing in the address may move the URL's port or path.
  for (const address of ["127.0.0.1#x", "127.0.0.1/x", "h?x", "user@h", "h:99", "é.example"]) {
    assert.match(invalid(springZnode("orders", "x", 1, {}, { address })), /no host/, address);
  }
  assert.match(invalid(springZnode("orders", "x", 1), "has space"), /name/);
  assert.match(invalid(springZnode("orders", "x", 1), "orders", "é"), /name/);
  assert.match(invalid("x".repeat(MAX_INSTANCE_JSON + 1)), /over/);
  const many = Object.fromEntries(Array.from({ length: 65 }, (_, n) => [`k${n}`, "v"]));
  assert.match(invalid(springZnode("orders", "x", 1, many)), /metadata/);
});

/** An HTTP server answering /actuator/health with a switchable status. */
function actuator() {
  const state = { code: 200 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname !== "/actuator/health") return new Response("", { status: 404 });
    return Response.json({ status: state.code === 200 ? "UP" : "DOWN" }, { status: state.code });
  });
  return { port: server.addr.port, state, server };
}

const FAST = {
  SERVICE_HEALTH_CHECK_INTERVAL: "0.3",
  HEALTH_CHECK_TIMEOUT: "0.5",
  HEALTH_CHECK_MAX_RETRIES: "0",
  HEALTH_CHECK_INITIAL_RETRY_DELAY: "0.01",
};

serverTest(
  "zookeeper foreign instances",
  ["ZOOKEEPER_HOSTS"],
  "a Spring-registered instance is listed, checked, discovered when healthy, never modified, and leaves with its znode",
  async () => {
    const base = `/cs-t-foreign-${crypto.randomUUID().slice(0, 8)}`;
    const app = actuator();
    const zk = await openZk();
    const owner = await openZk(); // the "Spring app"'s session: its znodes are ephemeral
    const path = `${base}/orders/3f1c-9a`;
    try {
      // One instance exists before the service starts: it is found by the first read.
      await owner.mkdirp(`${base}/billing`);
      await owner.create(
        `${base}/billing/b-1`,
        springZnode("billing", "b-1", app.port),
        CreateMode.EPHEMERAL,
      );
      await using svc = await startOnZookeeper(base, FAST);
      const get = async (p: string) => {
        const r = await svc.app.request(p);
        return { status: r.status, body: await r.json() };
      };
      const listed = async (service: string) =>
        ((await get("/api/v1/registry/services")).body as {
          service_name: string;
          instances: { instance_id: string; source: string; status: string }[];
        }[]).find((s) => s.service_name === service)?.instances ?? [];
      await waitFor(async () => (await listed("billing")).length === 1, 5_000, "billing listed");

      // Registered while the service runs: listed as source zookeeper within 2 s.
      await owner.mkdirp(`${base}/orders`);
      const data = springZnode("orders", "3f1c-9a", app.port, { instance_status: "UP", v: "7" });
      await owner.create(path, data, CreateMode.EPHEMERAL);
      const t0 = Date.now();
      await waitFor(async () => (await listed("orders")).length === 1, 2_000, "orders listed");
      console.log(`foreign instance listed ${Date.now() - t0} ms after its znode was created`);
      const [inst] = await listed("orders");
      assert.equal(inst.source, "zookeeper");

      // Healthy at /actuator/health: discovered, and picked by url.
      await waitFor(
        async () => (await get("/api/v1/registry/discover/orders")).body.instances?.length === 1,
        5_000,
        "discovered",
      );
      const picked = await get("/api/v1/registry/services/orders/url");
      assert.deepEqual(picked, {
        status: 200,
        body: {
          service_name: "orders",
          url: `http://127.0.0.1:${app.port}`,
          instance_id: "3f1c-9a",
        },
      });
      const disc = (await get("/api/v1/registry/discover/orders")).body.instances[0];
      assert.equal(disc.metadata.v, "7");
      assert.equal(disc.source, "zookeeper");
      assert.equal(disc.health_check_url, `http://127.0.0.1:${app.port}/actuator/health`);

      // Never modified through us: deregister, heartbeat and register with its id are 409.
      const ref = { service_name: "orders", instance_id: "3f1c-9a" };
      for (
        const [p, body] of [
          ["/api/v1/registry/deregister", ref],
          ["/api/v1/registry/heartbeat", ref],
          ["/api/v1/registry/register", {
            service_name: "orders",
            service_url: "http://127.0.0.1:9",
            metadata: { instance_id: "3f1c-9a" },
          }],
        ] as const
      ) {
        const r = await send(svc.app, "POST", p, body);
        assert.equal(r.status, 409, p);
        assert.equal(r.headers.get("content-type"), PROBLEM);
        assert.match((await r.json()).detail, /registered in ZooKeeper by another client/);
      }
      assert.equal(await zk.getData(path), data, "its znode is untouched");
      assert.equal(await zk.owner(path), owner.sessionId, "still its owner's");

      // Unhealthy: no longer discovered; /metrics counts it by source.
      app.state.code = 503;
      await waitFor(
        async () => (await get("/api/v1/registry/discover/orders")).body.instances?.length === 0,
        5_000,
        "not discovered while unhealthy",
      );
      assert.equal((await get("/api/v1/registry/services/orders/url")).status, 503);
      // Both answer from the same stub; each is checked on its own schedule, so billing's
      // check may come after orders' (the assertion raced it under CI's load).
      await waitFor(
        async () =>
          /registry_instances\{status="unhealthy",source="zookeeper"\} 2/.test(
            await (await svc.app.request("/metrics")).text(),
          ),
        5_000,
        "billing and orders counted unhealthy by source in /metrics",
      );
      app.state.code = 200;
      await waitFor(
        async () => (await get("/api/v1/registry/discover/orders")).body.instances?.length === 1,
        5_000,
        "discovered again",
      );

      // Its owner takes it out of service (Spring's /actuator/serviceregistry): not
      // discovered however healthy; back UP: discovered after its next check.
      await owner.setData(
        path,
        springZnode("orders", "3f1c-9a", app.port, {
          instance_status: "OUT_OF_SERVICE",
        }),
      );
      await waitFor(
        async () => (await get("/api/v1/registry/discover/orders")).body.instances?.length === 0,
        2_000,
        "out of service",
      );
      await owner.setData(path, data);
      await waitFor(
        async () => (await get("/api/v1/registry/discover/orders")).body.instances?.length === 1,
        5_000,
        "back in service",
      );

      // Its session ends (the app stops): gone from every answer within 2 s.
      owner.close();
      const t1 = Date.now();
      await waitFor(async () => (await listed("orders")).length === 0, 2_000, "orders gone");
      await waitFor(async () => (await listed("billing")).length === 0, 2_000, "billing gone");
      console.log(`foreign instances gone ${Date.now() - t1} ms after their session closed`);
      assert.equal((await get("/api/v1/registry/discover/orders")).status, 404);
    } finally {
      owner.close();
      zk.close();
      await app.server.shutdown();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "zookeeper foreign instances",
  ["ZOOKEEPER_HOSTS"],
  "znodes that are no instance are ignored without hiding the others; ours are never foreign",
  async () => {
    const base = `/cs-t-foreign-${crypto.randomUUID().slice(0, 8)}`;
    const zk = await openZk();
    try {
      await zk.mkdirp(`${base}/mixed`);
      await zk.create(`${base}/mixed/junk`, "not json", CreateMode.EPHEMERAL);
      await zk.create(`${base}/mixed/good`, springZnode("mixed", "good", 9), CreateMode.EPHEMERAL);
      await using svc = await startOnZookeeper(base, { SERVICE_HEALTH_CHECK_ENABLED: "false" });
      const r = await send(svc.app, "POST", "/api/v1/registry/register", {
        service_name: "mixed",
        service_url: "http://127.0.0.1:10",
        metadata: { instance_id: "ours-1" },
      });
      assert.equal(r.status, 201);
      await r.body?.cancel();
      const ids = async () => {
        const res = await svc.app.request("/api/v1/registry/services/mixed");
        const body = await res.json();
        return body.instances.map((i: { instance_id: string; source: string }) =>
          `${i.instance_id}:${i.source}`
        ).join(",");
      };
      await waitFor(async () => (await ids()) === "good:zookeeper,ours-1:api", 5_000, "listed");
      // The junk node turning into an instance is followed (its data watch).
      await zk.setData(`${base}/mixed/junk`, springZnode("mixed", "junk", 11));
      await waitFor(
        async () => (await ids()) === "good:zookeeper,junk:zookeeper,ours-1:api",
        2_000,
        "junk now an instance",
      );
      // Deregistering ours leaves the parent (others' instances are in it) and theirs.
      const d = await send(svc.app, "POST", "/api/v1/registry/deregister", {
        service_name: "mixed",
        instance_id: "ours-1",
      });
      assert.equal(d.status, 200);
      await d.body?.cancel();
      await waitFor(
        async () => (await ids()) === "good:zookeeper,junk:zookeeper",
        2_000,
        "ours gone",
      );
    } finally {
      zk.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "zookeeper foreign instances",
  ["ZOOKEEPER_HOSTS"],
  "a new session reads everything again: what went meanwhile is removed, what came is added",
  async () => {
    const base = `/cs-t-foreign-${crypto.randomUUID().slice(0, 8)}`;
    const events: string[] = [];
    const watch = new ForeignWatch({
      base,
      ours: () => false,
      sink: {
        upsert: (i) => events.push(`+${i.service_name}/${i.instance_id}`),
        remove: (s, id) => events.push(`-${s}/${id}`),
      },
      healthPath: "/actuator/health",
    });
    const writer = await openZk();
    let first = await openZk();
    try {
      await writer.mkdirp(`${base}/a`);
      await writer.create(`${base}/a/1`, springZnode("a", "1", 1));
      await writer.create(`${base}/a/2`, springZnode("a", "2", 2));
      await watch.sync(first);
      assert.deepEqual(events.sort(), ["+a/1", "+a/2"]);
      events.length = 0;
      // Watched: a change arrives without any read of ours.
      await writer.create(`${base}/a/3`, springZnode("a", "3", 3));
      await waitFor(() => events.includes("+a/3"), 2_000, "a/3 seen through the watch");
      events.length = 0;
      // The session is lost; meanwhile one goes, one comes, and a service appears.
      first.close();
      await writer.remove(`${base}/a/1`);
      await writer.mkdirp(`${base}/b`);
      await writer.create(`${base}/b/1`, springZnode("b", "1", 4));
      first = await openZk();
      await watch.sync(first);
      // Removed: exactly what went; reported: what came, and (read again, with new watches)
      // the ones that stayed, which the registry takes as unchanged.
      assert.deepEqual(events.filter((e) => e.startsWith("-")), ["-a/1"]);
      assert.deepEqual(events.filter((e) => e.startsWith("+")).sort(), ["+a/2", "+a/3", "+b/1"]);
      assert.equal(watch.size, 3);
      // And the new session's watches stand: on the service, and on the data of znodes read
      // before the session was lost (their old watches went with it).
      events.length = 0;
      await writer.remove(`${base}/b/1`);
      await waitFor(() => events.includes("-b/1"), 2_000, "b/1 gone through the watch");
      events.length = 0;
      await writer.setData(
        `${base}/a/2`,
        springZnode("a", "2", 2, { instance_status: "OUT_OF_SERVICE" }),
      );
      await waitFor(
        () => events.includes("+a/2"),
        2_000,
        "a/2's change seen after the new session",
      );
    } finally {
      watch.stop();
      first.close();
      writer.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "zookeeper foreign instances",
  ["ZOOKEEPER_HOSTS"],
  "a registration racing ahead of the watch never replaces another client's znode",
  async () => {
    const { ConflictError } = await import("../lib/errors.ts");
    const base = `/cs-t-foreign-${crypto.randomUUID().slice(0, 8)}`;
    const owner = await openZk();
    const data = springZnode("race", "r-1", 9);
    await owner.mkdirp(`${base}/race`);
    await owner.create(`${base}/race/r-1`, data, CreateMode.EPHEMERAL);
    // No watch(): the registry has not learned of the foreign instance yet.
    const reg = await openRegistry(base);
    try {
      await assert.rejects(reg.put(apiInstance("race", "r-1", 10)), ConflictError);
      assert.equal(await owner.getData(`${base}/race/r-1`), data);
      assert.equal(await owner.owner(`${base}/race/r-1`), owner.sessionId);
    } finally {
      reg.close();
      owner.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "zookeeper foreign instances",
  ["ZOOKEEPER_HOSTS"],
  "removing one of ours never deletes another client's znode that took its path",
  async () => {
    const base = `/cs-t-foreign-${crypto.randomUUID().slice(0, 8)}`;
    const owner = await openZk();
    const reg = await openRegistry(base);
    try {
      const ours = apiInstance("taken", "t-1", 10);
      await reg.put(ours);
      // Our znode goes (as after a session expiry) and another client takes the path.
      await owner.remove(`${base}/taken/t-1`);
      const data = springZnode("taken", "t-1", 9);
      await owner.create(`${base}/taken/t-1`, data, CreateMode.EPHEMERAL);
      await reg.remove("taken", "t-1");
      assert.equal(await owner.getData(`${base}/taken/t-1`), data, "theirs is still there");
      // One of ours left by an older session of ours is removed as before.
      const older = await openZk();
      try {
        await older.create(`${base}/taken/t-2`, curatorJson({ ...ours, instance_id: "t-2" }), 1);
        await reg.remove("taken", "t-2");
        assert.equal(await owner.exists(`${base}/taken/t-2`), false);
      } finally {
        older.close();
      }
    } finally {
      reg.close();
      owner.close();
      await dropBasePath(base);
    }
  },
);
