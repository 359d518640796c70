import assert from "node:assert/strict";
import { ValidationError } from "../lib/errors.ts";
import {
  Balancer,
  checkName,
  checkProbeTarget,
  curatorJson,
  fromCuratorJson,
  inCidr,
  type Instance,
  instanceIdFor,
  normalizeMetadata,
  parseServiceUrl,
} from "../lib/registry/model.ts";

/** Asserts `fn` throws a ValidationError whose only error names `field` in the body. */
function throwsNaming(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${e}`);
    assert.equal(e.errors.length, 1);
    assert.equal(e.errors[0].field, field);
    assert.equal(e.errors[0].in, "body");
    if (message) assert.match(e.errors[0].message, message);
    return true;
  });
}

function instance(over: Partial<Instance> = {}): Instance {
  const service_url = over.service_url ?? "http://asr-service:8087";
  return {
    service_name: "asr-service",
    instance_id: "asr-service-1",
    service_url,
    health_check_url: `${service_url.replace(/\/+$/, "")}/health`,
    metadata: { version: "1.0.0" },
    status: "registered",
    last_health_check: null,
    registered_at: "2024-01-01T00:00:00.000Z",
    ttl_seconds: null,
    last_heartbeat: null,
    unhealthy_since: null,
    ...over,
  };
}

// --- parseServiceUrl --------------------------------------------------------------------

Deno.test("parseServiceUrl() takes the port from the scheme when absent", () => {
  assert.deepEqual(parseServiceUrl("http://asr-service", "service_url"), {
    scheme: "http",
    host: "asr-service",
    port: 80,
    path: "",
  });
  assert.deepEqual(parseServiceUrl("https://asr-service/", "service_url"), {
    scheme: "https",
    host: "asr-service",
    port: 443,
    path: "",
  });
});

Deno.test("parseServiceUrl() keeps an explicit port, even the scheme's default", () => {
  assert.equal(parseServiceUrl("http://asr-service:8087", "service_url").port, 8087);
  assert.equal(parseServiceUrl("https://asr-service:8443", "service_url").port, 8443);
  assert.equal(parseServiceUrl("http://asr-service:80", "service_url").port, 80);
});

Deno.test("parseServiceUrl() returns path and query, dropping the fragment", () => {
  const u = parseServiceUrl("https://Api.Example.com:9000/v1/health?full=1#x", "health_check_url");
  assert.deepEqual(u, {
    scheme: "https",
    host: "api.example.com",
    port: 9000,
    path: "/v1/health?full=1",
  });
});

Deno.test("parseServiceUrl() keeps IPv6 brackets in host", () => {
  const u = parseServiceUrl("http://[::1]:8080/x", "service_url");
  assert.equal(u.host, "[::1]");
  assert.equal(u.port, 8080);
  assert.equal(u.path, "/x");
});

Deno.test("parseServiceUrl() throws ValidationError naming the field for bad URLs", () => {
  throwsNaming(() => parseServiceUrl("", "service_url"), "service_url");
  throwsNaming(() => parseServiceUrl("not a url", "service_url"), "service_url", /parse/);
  throwsNaming(() => parseServiceUrl("asr-service:8087", "service_url"), "service_url");
  throwsNaming(
    () => parseServiceUrl("ftp://host/x", "health_check_url"),
    "health_check_url",
    /ftp/,
  );
  throwsNaming(() => parseServiceUrl("http://host:99999", "service_url"), "service_url");
  throwsNaming(() => parseServiceUrl("http://host:0", "service_url"), "service_url", /port/);
  throwsNaming(
    () => parseServiceUrl("http://user:pw@host", "service_url"),
    "service_url",
    /credentials/,
  );
  throwsNaming(
    () => parseServiceUrl(`http://host/${"a".repeat(2100)}`, "service_url"),
    "service_url",
    /2048/,
  );
  throwsNaming(() => parseServiceUrl(42 as unknown as string, "service_url"), "service_url");
});

// --- inCidr -----------------------------------------------------------------------------

Deno.test("inCidr() matches IPv4 addresses by prefix", () => {
  assert.equal(inCidr("169.254.169.254", "169.254.0.0/16"), true);
  assert.equal(inCidr("169.255.0.1", "169.254.0.0/16"), false);
  assert.equal(inCidr("10.1.2.3", "10.0.0.0/8"), true);
  assert.equal(inCidr("172.31.255.255", "172.16.0.0/12"), true);
  assert.equal(inCidr("172.32.0.0", "172.16.0.0/12"), false);
  assert.equal(inCidr("1.2.3.4", "0.0.0.0/0"), true);
  assert.equal(inCidr("1.2.3.4", "1.2.3.4"), true);
  assert.equal(inCidr("1.2.3.5", "1.2.3.4/32"), false);
});

Deno.test("inCidr() matches IPv6 addresses, bracketed or not", () => {
  assert.equal(inCidr("fe80::1", "fe80::/10"), true);
  assert.equal(inCidr("[febf:ffff::1]", "fe80::/10"), true);
  assert.equal(inCidr("fec0::1", "fe80::/10"), false);
  assert.equal(inCidr("[fd00:ec2::254]", "fd00:ec2::254/128"), true);
  assert.equal(inCidr("fd00:ec2::255", "fd00:ec2::254/128"), false);
  assert.equal(inCidr("2001:db8:0:0:0:0:0:1", "2001:db8::/32"), true);
  assert.equal(inCidr("::ffff:169.254.1.1", "::ffff:0:0/96"), true);
  assert.equal(inCidr("::1", "::1"), true);
});

Deno.test("inCidr() is false across families and for malformed input", () => {
  assert.equal(inCidr("::ffff:169.254.1.1", "169.254.0.0/16"), false);
  assert.equal(inCidr("169.254.1.1", "fe80::/10"), false);
  assert.equal(inCidr("not-an-ip", "10.0.0.0/8"), false);
  assert.equal(inCidr("10.0.0.1", "10.0.0.0/33"), false);
  assert.equal(inCidr("10.0.0.1", "10.0.0.0/x"), false);
  assert.equal(inCidr("256.0.0.1", "0.0.0.0/0"), false);
  assert.equal(inCidr("1:2:3:4:5:6:7:8:9", "::/0"), false);
  assert.equal(inCidr("1::2::3", "::/0"), false);
});

// --- checkProbeTarget -------------------------------------------------------------------

Deno.test("checkProbeTarget() refuses the cloud metadata address 169.254.169.254", () => {
  throwsNaming(
    () => checkProbeTarget("http://169.254.169.254/latest/meta-data", "health_check_url", []),
    "health_check_url",
    /HEALTH_CHECK_ALLOWED_NETWORKS/,
  );
});

Deno.test("checkProbeTarget() refuses 169.254.169.254 written in other numeric forms", () => {
  for (
    const host of ["0xa9fea9fe", "2852039166", "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]"]
  ) {
    throwsNaming(() => checkProbeTarget(`http://${host}/`, "service_url", []), "service_url");
  }
});

Deno.test("checkProbeTarget() allows 169.254.x when the allowed list covers it", () => {
  checkProbeTarget("http://169.254.10.20:8080/health", "health_check_url", ["169.254.0.0/16"]);
  checkProbeTarget("http://169.254.169.254/", "health_check_url", ["169.254.169.254"]);
  checkProbeTarget("http://[::ffff:169.254.1.1]/", "health_check_url", ["169.254.0.0/16"]);
  throwsNaming(
    () => checkProbeTarget("http://169.254.10.20/", "health_check_url", ["169.254.99.0/24"]),
    "health_check_url",
  );
});

Deno.test("checkProbeTarget() refuses IPv6 link-local and the EC2 v6 metadata address", () => {
  throwsNaming(() => checkProbeTarget("http://[fe80::1]:8080/", "service_url", []), "service_url");
  throwsNaming(
    () => checkProbeTarget("http://[fd00:ec2::254]/latest", "service_url", []),
    "service_url",
  );
  checkProbeTarget("http://[fe80::1]/", "service_url", ["fe80::/10"]);
  checkProbeTarget("http://[fd00:ec2::254]/", "service_url", ["fd00:ec2::254"]);
});

Deno.test("checkProbeTarget() refuses metadata host names unless listed exactly", () => {
  for (
    const url of [
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://METADATA.google.internal./",
      "http://metadata/",
    ]
  ) {
    throwsNaming(() => checkProbeTarget(url, "health_check_url", []), "health_check_url");
  }
  checkProbeTarget("http://metadata.google.internal/", "health_check_url", [
    "metadata.google.internal",
  ]);
});

Deno.test("checkProbeTarget() allows loopback, private networks and ordinary names", () => {
  for (
    const url of [
      "http://127.0.0.1:8087/health",
      "http://10.0.3.7/health",
      "http://192.168.1.20:8080/",
      "http://172.16.0.1/",
      "http://localhost:8087/health",
      "http://[::1]:8087/health",
      "https://asr-service.example.com/health",
      "http://asr-service:8087",
    ]
  ) {
    checkProbeTarget(url, "health_check_url", []);
  }
});

Deno.test("checkProbeTarget() rejects an unparsable URL naming the field", () => {
  throwsNaming(() => checkProbeTarget("gopher://x", "health_check_url", []), "health_check_url");
});

// --- curatorJson / fromCuratorJson ------------------------------------------------------

Deno.test("curatorJson() writes Curator's ServiceInstance keys with a Spring payload", () => {
  const doc = JSON.parse(curatorJson(instance({
    status: "healthy",
    last_health_check: "2024-01-01T00:00:05.000Z",
  })));
  assert.deepEqual(Object.keys(doc), [
    "name",
    "id",
    "address",
    "port",
    "sslPort",
    "payload",
    "registrationTimeUTC",
    "serviceType",
    "uriSpec",
    "enabled",
  ]);
  assert.equal(doc.enabled, true);
  assert.equal(doc.name, "asr-service");
  assert.equal(doc.id, "asr-service-1");
  assert.equal(doc.address, "asr-service");
  assert.equal(doc.port, 8087);
  assert.equal(doc.sslPort, null);
  assert.equal(doc.registrationTimeUTC, Date.UTC(2024, 0, 1));
  assert.equal(doc.serviceType, "DYNAMIC");
  assert.deepEqual(doc.uriSpec, {
    parts: [
      { value: "scheme", variable: true },
      { value: "://", variable: false },
      { value: "address", variable: true },
      { value: ":", variable: false },
      { value: "port", variable: true },
    ],
  });
  assert.deepEqual(Object.keys(doc.payload), ["@class", "id", "name", "metadata"]);
  assert.equal(
    doc.payload["@class"],
    "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
  );
  assert.equal(doc.payload.id, "asr-service-1");
  assert.equal(doc.payload.name, "asr-service");
  assert.deepEqual(doc.payload.metadata, {
    version: "1.0.0",
    service_url: "http://asr-service:8087",
    health_check_url: "http://asr-service:8087/health",
    status: "healthy",
    last_health_check: "2024-01-01T00:00:05.000Z",
    instance_status: "UP",
  });
});

Deno.test("curatorJson() says enabled and instance_status as REST discover sees the instance", () => {
  const of = (status: Instance["status"]) => JSON.parse(curatorJson(instance({ status })));
  // Curator's ServiceProvider takes enabled ones; Spring Cloud LoadBalancer takes UP ones.
  assert.deepEqual(
    (["healthy", "unhealthy", "registered"] as const).map((s) => {
      const d = of(s);
      return [d.enabled, d.payload.metadata.instance_status];
    }),
    [[true, "UP"], [false, "OUT_OF_SERVICE"], [false, "STARTING"]],
  );
  // Our own field wins over user metadata of the same name, and is not read back as user's.
  const i = instance({ status: "unhealthy", metadata: { instance_status: "UP" } });
  const doc = JSON.parse(curatorJson(i));
  assert.equal(doc.payload.metadata.instance_status, "OUT_OF_SERVICE");
  assert.deepEqual(fromCuratorJson(curatorJson(instance()))?.metadata, { version: "1.0.0" });
});

Deno.test("curatorJson() puts an https port in sslPort and builds the uri from ssl-port", () => {
  const doc = JSON.parse(curatorJson(instance({ service_url: "https://asr-service" })));
  assert.equal(doc.port, null);
  assert.equal(doc.sslPort, 443);
  assert.deepEqual(doc.uriSpec.parts.at(-1), { value: "ssl-port", variable: true });
});

Deno.test("curatorJson() writes an unchecked instance's last_health_check as an empty string", () => {
  const doc = JSON.parse(curatorJson(instance()));
  assert.equal(doc.payload.metadata.last_health_check, "");
  assert.equal(doc.payload.metadata.status, "registered");
  for (const v of Object.values(doc.payload.metadata)) assert.equal(typeof v, "string");
});

Deno.test("curatorJson() appends a service_url path to the uriSpec as a literal", () => {
  const doc = JSON.parse(curatorJson(instance({ service_url: "http://[::1]:9000/api" })));
  assert.equal(doc.address, "[::1]");
  assert.deepEqual(doc.uriSpec.parts.at(-1), { value: "/api", variable: false });
});

Deno.test("curatorJson() lets our fields win over user metadata of the same name", () => {
  const doc = JSON.parse(curatorJson(instance({ metadata: { status: "beta" } })));
  assert.equal(doc.payload.metadata.status, "registered");
});

Deno.test("fromCuratorJson() round-trips what curatorJson() wrote", () => {
  const cases = [
    instance(),
    instance({
      service_url: "https://asr.example.com:8443/base",
      health_check_url: "https://asr.example.com:8443/base/ready",
      metadata: { version: "2", weight: "3", instance_id: "asr-service-1", ["__proto__"]: "x" },
      status: "unhealthy",
      last_health_check: "2024-02-03T04:05:06.789Z",
      registered_at: "2024-02-03T04:00:00.123Z",
    }),
  ];
  for (const i of cases) assert.deepEqual(fromCuratorJson(curatorJson(i)), i);
});

Deno.test("fromCuratorJson() leaves fields the znode does not carry null", () => {
  const back = fromCuratorJson(curatorJson(instance({
    ttl_seconds: 30,
    last_heartbeat: "2024-01-01T00:00:10.000Z",
    unhealthy_since: "2024-01-01T00:00:20.000Z",
  })));
  assert.ok(back);
  assert.equal(back.ttl_seconds, null);
  assert.equal(back.last_heartbeat, null);
  assert.equal(back.unhealthy_since, null);
});

Deno.test("fromCuratorJson() returns null for foreign or garbled data", () => {
  const ours = JSON.parse(curatorJson(instance()));
  const foreign = [
    "",
    "not json",
    "null",
    "[]",
    JSON.stringify({ ...ours, name: 1 }),
    JSON.stringify({ ...ours, payload: null }),
    JSON.stringify({ ...ours, payload: { ...ours.payload, "@class": "com.example.Other" } }),
    JSON.stringify({
      ...ours,
      payload: { ...ours.payload, metadata: { instance_id: "x" } },
    }),
    JSON.stringify({
      ...ours,
      payload: { ...ours.payload, metadata: { ...ours.payload.metadata, status: "weird" } },
    }),
    JSON.stringify({
      ...ours,
      payload: { ...ours.payload, metadata: { ...ours.payload.metadata, version: 1 } },
    }),
    JSON.stringify({ ...ours, registrationTimeUTC: "yesterday" }),
  ];
  for (const f of foreign) assert.equal(fromCuratorJson(f), null, f);
});

// --- Balancer ---------------------------------------------------------------------------

Deno.test("Balancer round robin alternates between two instances", () => {
  const b = new Balancer();
  const a1 = instance({ instance_id: "a" });
  const b1 = instance({ instance_id: "b" });
  const picks = [
    b.pick("svc", [a1, b1]),
    b.pick("svc", [b1, a1]),
    b.pick("svc", [a1, b1]),
    b.pick("svc", [b1, a1]),
  ].map((i) => i?.instance_id);
  assert.deepEqual(picks, ["a", "b", "a", "b"]);
});

Deno.test("Balancer round robin keeps separate turns per service", () => {
  const b = new Balancer();
  const list = ["a", "b", "c"].map((id) => instance({ instance_id: id }));
  assert.equal(b.pick("one", list)?.instance_id, "a");
  assert.equal(b.pick("one", list)?.instance_id, "b");
  assert.equal(b.pick("two", list, "round_robin")?.instance_id, "a");
  assert.equal(b.pick("one", list)?.instance_id, "c");
});

Deno.test("Balancer round robin resumes after the last pick when instances change", () => {
  const b = new Balancer();
  const [a, c, d] = ["a", "c", "d"].map((id) => instance({ instance_id: id }));
  assert.equal(b.pick("svc", [a, c])?.instance_id, "a");
  assert.equal(b.pick("svc", [d, a])?.instance_id, "d");
  assert.equal(b.pick("svc", [a, c])?.instance_id, "a");
});

Deno.test("Balancer weights 1:3 give about 25% and 75% over 400 picks", () => {
  for (const strategy of ["weighted", "round_robin"] as const) {
    const b = new Balancer();
    const light = instance({ instance_id: "light", metadata: { weight: "1" } });
    const heavy = instance({ instance_id: "heavy", metadata: { weight: "3" } });
    let heavyPicks = 0;
    for (let k = 0; k < 400; k++) {
      if (b.pick("svc", [light, heavy], strategy)?.instance_id === "heavy") heavyPicks++;
    }
    assert.ok(heavyPicks >= 280 && heavyPicks <= 320, `${strategy}: heavy ${heavyPicks}/400`);
    assert.ok(400 - heavyPicks >= 80 && 400 - heavyPicks <= 120, strategy);
  }
});

Deno.test("Balancer weighted spreads picks smoothly instead of in bursts", () => {
  const b = new Balancer();
  const x = instance({ instance_id: "x", metadata: { weight: "1" } });
  const y = instance({ instance_id: "y", metadata: { weight: "3" } });
  const seq = Array.from({ length: 8 }, () => b.pick("svc", [x, y], "weighted")?.instance_id);
  assert.deepEqual(seq, ["y", "x", "y", "y", "y", "x", "y", "y"]);
});

Deno.test("Balancer weighted counts an invalid weight as 1", () => {
  const b = new Balancer();
  const list = [
    instance({ instance_id: "a", metadata: { weight: "0" } }),
    instance({ instance_id: "b", metadata: { weight: "-2" } }),
    instance({ instance_id: "c", metadata: { weight: "x" } }),
    instance({ instance_id: "d", metadata: { weight: "1.5" } }),
  ];
  const counts = new Map<string, number>();
  for (let k = 0; k < 400; k++) {
    const id = b.pick("svc", list, "weighted")!.instance_id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [100, 100, 100, 100]);
});

Deno.test("Balancer random only returns members", () => {
  const b = new Balancer();
  const list = ["a", "b", "c"].map((id) => instance({ instance_id: id }));
  const seen = new Set<string>();
  for (let k = 0; k < 300; k++) {
    const p = b.pick("svc", list, "random");
    assert.ok(p && list.includes(p));
    seen.add(p.instance_id);
  }
  assert.equal(seen.size, 3);
});

Deno.test("Balancer returns null when no instance is healthy", () => {
  const b = new Balancer();
  assert.equal(b.pick("svc", []), null);
  assert.equal(b.pick("svc", [], "random"), null);
  assert.equal(b.pick("svc", [], "weighted"), null);
});

// --- checkName --------------------------------------------------------------------------

Deno.test("checkName() accepts znode-safe names up to 128 characters", () => {
  checkName("asr-service", "service_name");
  checkName("asr_service.v2-1", "instance_id");
  checkName("a".repeat(128), "service_name");
});

Deno.test("checkName() rejects empty, long, unsafe and dot-only names naming the field", () => {
  throwsNaming(() => checkName("", "service_name"), "service_name");
  throwsNaming(() => checkName("a".repeat(129), "service_name"), "service_name");
  throwsNaming(() => checkName("a/b", "instance_id"), "instance_id");
  throwsNaming(() => checkName("a b", "instance_id"), "instance_id");
  throwsNaming(() => checkName("café", "instance_id"), "instance_id");
  throwsNaming(() => checkName(".", "instance_id"), "instance_id");
  throwsNaming(() => checkName("..", "service_name"), "service_name");
});

// --- instanceIdFor ----------------------------------------------------------------------

Deno.test("instanceIdFor() takes metadata.instance_id when given", () => {
  assert.equal(
    instanceIdFor("asr-service", "http://asr-service:8087", { instance_id: "asr-service-1" }),
    "asr-service-1",
  );
  assert.equal(instanceIdFor("asr-service", "http://h", { instance_id: 7 }), "7");
});

Deno.test("instanceIdFor() rejects an invalid metadata.instance_id", () => {
  throwsNaming(
    () => instanceIdFor("asr-service", "http://h", { instance_id: "a/b" }),
    "metadata.instance_id",
  );
  throwsNaming(
    () => instanceIdFor("asr-service", "http://h", { instance_id: { x: 1 } }),
    "metadata.instance_id",
  );
});

Deno.test("instanceIdFor() generates service-host-port when no id is given", () => {
  assert.equal(
    instanceIdFor("asr-service", "http://asr-service:8087", {}),
    "asr-service-asr-service-8087",
  );
  assert.equal(instanceIdFor("asr", "https://10.0.0.5/x", {}), "asr-10.0.0.5-443");
  assert.equal(instanceIdFor("asr", "http://[fe80::1]:81", {}), "asr-fe80--1-81");
});

Deno.test("instanceIdFor() shortens long generated ids to a valid, distinct name", () => {
  const host = `${"h".repeat(60)}.${"x".repeat(60)}.example.com`;
  const a = instanceIdFor("s".repeat(40), `http://${host}:1`, {});
  const b = instanceIdFor("s".repeat(40), `http://${host}:2`, {});
  assert.equal(a.length, 128);
  checkName(a, "instance_id");
  assert.notEqual(a, b);
});

Deno.test("instanceIdFor() rejects a bad service_url when it must generate", () => {
  throwsNaming(() => instanceIdFor("asr", "nope", {}), "service_url");
});

// --- normalizeMetadata ------------------------------------------------------------------

Deno.test("normalizeMetadata() keeps strings and JSON-stringifies other values", () => {
  assert.deepEqual(
    normalizeMetadata({ version: "1.0.0", weight: 3, canary: true, tags: ["a"], x: null }),
    { version: "1.0.0", weight: "3", canary: "true", tags: '["a"]', x: "null" },
  );
});

Deno.test("normalizeMetadata() gives an empty map for absent metadata", () => {
  assert.deepEqual(normalizeMetadata(undefined), {});
  assert.deepEqual(normalizeMetadata(null), {});
});

Deno.test("normalizeMetadata() keeps a __proto__ key as plain data", () => {
  const m = normalizeMetadata(JSON.parse('{"__proto__": "x"}'));
  assert.equal(Object.getPrototypeOf(m), Object.prototype);
  assert.deepEqual(Object.entries(m), [["__proto__", "x"]]);
});

Deno.test("normalizeMetadata() enforces entry, key and value limits naming metadata", () => {
  const entries = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, k) => [`k${k}`, "v"]));
  assert.equal(Object.keys(normalizeMetadata(entries(64))).length, 64);
  throwsNaming(() => normalizeMetadata(entries(65)), "metadata", /64/);
  normalizeMetadata({ ["k".repeat(128)]: "v" });
  throwsNaming(() => normalizeMetadata({ ["k".repeat(129)]: "v" }), "metadata", /128/);
  normalizeMetadata({ k: "v".repeat(1024) });
  throwsNaming(() => normalizeMetadata({ k: "v".repeat(1025) }), "metadata", /1024/);
  throwsNaming(() => normalizeMetadata({ k: ["v".repeat(1022)] }), "metadata", /1024/);
});

Deno.test("normalizeMetadata() rejects non-object metadata", () => {
  for (const bad of ["x", 1, true, ["a"]]) {
    throwsNaming(() => normalizeMetadata(bad), "metadata", /object/);
  }
});
