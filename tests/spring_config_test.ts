/**
 * Spring Cloud Config Server's protocol under /config-server (routes/spring_config.ts):
 * the Environment's shape and source order, flattening, secrets, auth as Spring clients
 * send it, and the file forms. The real Spring client and a real Spring Cloud Config
 * Server are compared with ours in the Java interop suite (interop/java/).
 */
import assert from "node:assert/strict";
import { call, embeddedSettings, ioTest, post, startService } from "./_helpers.ts";
import { flattenEntry, mergedProperties, toTree } from "../lib/config/spring.ts";
import { SECRETS_OMITTED_HEADER } from "../routes/spring_config.ts";

const APP = "orders";

async function seed(app: Parameters<typeof post>[0], headers: Record<string, string> = {}) {
  const put = async (environment: string, key: string, value: unknown, service?: string) => {
    const body: Record<string, unknown> = { key, value, environment };
    if (service) body.service_name = service;
    const r = await post(app, "/api/v1/config", body, headers);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  await put("development", "db", { url: "jdbc:dev", pool: { max: 5 } });
  await put("development", "db", { url: "jdbc:orders-dev" }, APP);
  await put("development", "features", ["a", "b"], APP);
  await put("development", "ratio", 0.25, APP);
  await put("development", "port", 8080);
  await put("staging", "port", 9090, APP);
  await put("staging", "servers", [{ host: "s1", port: 1 }, { host: "s2" }]);
}

ioTest(
  "spring config: the Environment lists service then global sources, last profile first",
  async () => {
    await using svc = await startService(embeddedSettings());
    await seed(svc.app);
    const r = await call(svc.app, "GET", `/config-server/${APP}/development,staging`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.name, APP);
    // Spring's server echoes the profiles segment as one element.
    assert.deepEqual(r.body.profiles, ["development,staging"]);
    assert.equal(r.body.label, null);
    assert.equal(typeof r.body.version, "string");
    assert.deepEqual(
      r.body.propertySources.map((s: { name: string }) => s.name),
      [
        `configservice:${APP}-staging`,
        "configservice:application-staging",
        `configservice:${APP}-development`,
        "configservice:application-development",
      ],
    );
    const [svcStaging, globalStaging, svcDev, globalDev] = r.body.propertySources.map((
      s: { source: unknown },
    ) => s.source);
    assert.deepEqual(svcStaging, { port: 9090 });
    assert.deepEqual(globalStaging, {
      "servers[0].host": "s1",
      "servers[0].port": 1,
      "servers[1].host": "s2",
    });
    assert.deepEqual(svcDev, {
      "db.url": "jdbc:orders-dev",
      "features[0]": "a",
      "features[1]": "b",
      ratio: 0.25,
    });
    assert.deepEqual(globalDev, { "db.url": "jdbc:dev", "db.pool.max": 5, port: 8080 });

    // A change of any answering entry changes the version; a label is echoed.
    const before = r.body.version;
    await post(svc.app, "/api/v1/config", { key: "new", value: 1, environment: "staging" });
    const after = await call(svc.app, "GET", `/config-server/${APP}/development,staging/main`);
    assert.equal(after.body.label, "main");
    assert.notEqual(after.body.version, before);
  },
);

ioTest(
  "spring config: unknown profiles and applications answer 200 with what there is",
  async () => {
    await using svc = await startService(embeddedSettings());
    await seed(svc.app);
    const def = await call(svc.app, "GET", `/config-server/${APP}/default`);
    assert.equal(def.status, 200);
    assert.deepEqual(def.body.profiles, ["default"]);
    assert.deepEqual(def.body.propertySources, []);
    const none = await call(svc.app, "GET", "/config-server/nobody/development");
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.propertySources.map((s: { name: string }) => s.name), [
      "configservice:application-development",
    ]);
  },
);

ioTest("spring config: the file forms answer the merged properties", async () => {
  await using svc = await startService(embeddedSettings());
  await seed(svc.app);
  const props = await call(svc.app, "GET", `/config-server/${APP}-development.properties`);
  assert.equal(props.status, 200);
  assert.match(props.text, /^db\.url: jdbc:orders-dev$/m);
  assert.match(props.text, /^db\.pool\.max: 5$/m);
  const json = await call(svc.app, "GET", `/config-server/main/${APP}-development.json`);
  assert.equal(json.status, 200);
  assert.deepEqual(json.body.db, { url: "jdbc:orders-dev", pool: { max: 5 } });
  assert.deepEqual(json.body.features, ["a", "b"]);
  const yml = await call(svc.app, "GET", `/config-server/${APP}-development,staging.yml`);
  assert.equal(yml.status, 200);
  assert.match(yml.text, /^port: 9090$/m);
  const bad = await call(svc.app, "GET", "/config-server/nothing.txt");
  assert.equal(bad.status, 404);
});

ioTest(
  "spring config: secrets only in clear for secrets:read, else left out and named",
  async () => {
    await using svc = await startService(embeddedSettings({
      API_TOKENS: "boot:boot-token-0123456789:config:read;" +
        "ops:ops-token-0123456789:config:read,secrets:read;" +
        "writer:writer-token-0123456789:config:write",
    }));
    const w = { authorization: "Bearer writer-token-0123456789" };
    const r = await post(svc.app, "/api/v1/config", {
      key: "db.password",
      value: "s3cret",
      environment: "development",
      service_name: APP,
      secret: true,
    }, w);
    assert.equal(r.status, 201);
    await post(svc.app, "/api/v1/config", {
      key: "db.user",
      value: "app",
      environment: "development",
      service_name: APP,
    }, w);
    // HTTP Basic with the token as password, as spring.cloud.config.username/password send it.
    const basic = (token: string) => ({ authorization: `Basic ${btoa(`user:${token}`)}` });
    const plain = await call(svc.app, "GET", `/config-server/${APP}/development`, undefined, {
      ...basic("boot-token-0123456789"),
    });
    assert.equal(plain.status, 200, plain.text);
    assert.deepEqual(plain.body.propertySources[0].source, { "db.user": "app" });
    assert.equal(plain.headers.get(SECRETS_OMITTED_HEADER), "db.password");
    assert.ok(!plain.text.includes("******"));
    const clear = await call(svc.app, "GET", `/config-server/${APP}/development`, undefined, {
      authorization: "Bearer ops-token-0123456789",
    });
    assert.deepEqual(clear.body.propertySources[0].source, {
      "db.password": "s3cret",
      "db.user": "app",
    });
    assert.equal(clear.headers.get(SECRETS_OMITTED_HEADER), null);
    // Without a token, or with one lacking config:read: refused.
    assert.equal((await call(svc.app, "GET", `/config-server/${APP}/development`)).status, 401);
    const wrong = await call(svc.app, "GET", `/config-server/${APP}/development`, undefined, {
      ...basic("writer-token-0123456789"),
    });
    assert.equal(wrong.status, 403);
    const badBasic = await call(svc.app, "GET", `/config-server/${APP}/development`, undefined, {
      authorization: `Basic ${btoa("user:nope")}`,
    });
    assert.equal(badBasic.status, 401);
  },
);

ioTest("spring config: a token bound to one environment cannot read another's", async () => {
  await using svc = await startService(embeddedSettings({
    API_TOKENS: "prod:prod-token-0123456789:config:read@production",
  }));
  const r = await call(svc.app, "GET", `/config-server/${APP}/development`, undefined, {
    authorization: "Bearer prod-token-0123456789",
  });
  assert.equal(r.status, 403);
  const ok = await call(svc.app, "GET", `/config-server/${APP}/default,production`, undefined, {
    authorization: "Bearer prod-token-0123456789",
  });
  assert.equal(ok.status, 200);
});

Deno.test("spring config: values flatten as Spring flattens YAML", () => {
  const out: Record<string, unknown> = {};
  flattenEntry(out, "a", { b: { c: 1 }, list: [1, { x: true }], empty: [], none: null, obj: {} });
  flattenEntry(out, "s", "007");
  assert.deepEqual(out, {
    "a.b.c": 1,
    "a.list[0]": 1,
    "a.list[1].x": true,
    "a.empty": "",
    "a.none": "",
    s: "007",
  });
  const merged = mergedProperties([
    { name: "one", source: { "a.b": 1 } },
    { name: "two", source: { "a.b": 2, "a.c[0]": "x" } },
  ]);
  assert.deepEqual(toTree(merged), { a: { b: 1, c: ["x"] } });
});

/**
 * A layout whose `{application}-{profile}.yml` files a real Spring Cloud Config Server
 * 4.3.0 (native profile) answered with what the test below expects, captured with curl
 * (interop/java runs the live comparison).
 */
async function seedSpringLayout(app: Parameters<typeof post>[0]) {
  const put = async (environment: string, key: string, value: unknown, service?: string) => {
    const body: Record<string, unknown> = { key, value, environment };
    if (service) body.service_name = service;
    const r = await post(app, "/api/v1/config", body);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  const A = "interop-app";
  await put("development", "db", { pool: { size: 10 }, host: "dev-db.internal" });
  await put("development", "greeting", "hello from global development");
  await put("development", "feature", { ratio: 0.25 });
  await put("development", "db", { pool: { size: 25 } }, A);
  await put("development", "nested", { a: { b: { c: "deep" } } }, A);
  await put("development", "tags", ["alpha", "beta", "gamma"], A);
  await put("development", "servers", [{ host: "a.example", port: 8080 }, {
    host: "b.example",
    port: 8081,
    tls: true,
  }], A);
  await put("development", "nothing", null, A);
  await put("development", "emptyList", [], A);
  await put("development", "emptyMap", {}, A);
  await put("development", "count", 42, A);
  await put("development", "ratio", 1.5, A);
  await put("development", "enabled", true, A);
  await put("development", "version", "1.10", A);
  await put("staging", "db", { host: "staging-db.internal" });
  await put("staging", "greeting", "hello from global staging");
  await put("staging", "count", 7, A);
  await put("staging", "enabled", false, A);
  await put("staging", "tags", ["one"], A);
}

ioTest("spring config: the file forms answer what Spring's own server answers", async () => {
  await using svc = await startService(embeddedSettings());
  await seedSpringLayout(svc.app);
  const props = await call(
    svc.app,
    "GET",
    "/config-server/interop-app-development,staging.properties",
  );
  // Our entries are listed in key order, Spring's in file order: compare as sets of lines,
  // and the list replaced whole (tags[0] only) exactly as Spring's.
  const want = [
    "db.pool.size: 25",
    "db.host: staging-db.internal",
    "greeting: hello from global staging",
    "feature.ratio: 0.25",
    "nested.a.b.c: deep",
    "nothing: ",
    "emptyList: ",
    "count: 7",
    "ratio: 1.5",
    "enabled: false",
    "version: 1.10",
    "tags[0]: one",
    "servers[0].host: a.example",
    "servers[0].port: 8080",
    "servers[1].host: b.example",
    "servers[1].port: 8081",
    "servers[1].tls: true",
  ];
  assert.deepEqual(props.text.split("\n").sort(), [...want].sort());
  const json = await call(svc.app, "GET", "/config-server/interop-app-development,staging.json");
  assert.deepEqual(json.body, {
    db: { pool: { size: 25 }, host: "staging-db.internal" },
    greeting: "hello from global staging",
    feature: { ratio: 0.25 },
    nested: { a: { b: { c: "deep" } } },
    nothing: "",
    emptyList: "",
    count: 7,
    ratio: 1.5,
    enabled: false,
    version: "1.10",
    tags: ["one"],
    servers: [{ host: "a.example", port: 8080 }, { host: "b.example", port: 8081, tls: true }],
  });
  const yml = await call(svc.app, "GET", "/config-server/main/interop-app-development.yml");
  for (
    const line of [
      "version: '1.10'",
      "nothing: ''",
      "tags:\n- alpha\n- beta\n- gamma",
      "servers:\n- host: a.example\n  port: 8080\n- host: b.example\n  port: 8081\n  tls: true",
      "db:\n  pool:\n    size: 25\n  host: dev-db.internal",
    ]
  ) assert.ok(yml.text.includes(line), `${line} in\n${yml.text}`);
  const none = await call(svc.app, "GET", "/config-server/interop-app-production.yml");
  assert.equal(none.text, "{}\n");
  const empty = await call(svc.app, "GET", "/config-server/interop-app-production.properties");
  assert.equal(empty.text, "");
  const env = await call(svc.app, "GET", "/config-server/interop-app/development");
  assert.deepEqual(env.body.propertySources[0].source, {
    count: 42,
    "db.pool.size": 25,
    emptyList: "",
    enabled: true,
    "nested.a.b.c": "deep",
    nothing: "",
    ratio: 1.5,
    "servers[0].host": "a.example",
    "servers[0].port": 8080,
    "servers[1].host": "b.example",
    "servers[1].port": 8081,
    "servers[1].tls": true,
    "tags[0]": "alpha",
    "tags[1]": "beta",
    "tags[2]": "gamma",
    version: "1.10",
  });
});
