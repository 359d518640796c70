import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { probe, type ProbeSettings } from "../lib/health/prober.ts";
import { embeddedIPv4, refusedAddress } from "../lib/health/address_policy.ts";
import { pinnedGet, type PinnedRequest, type Resolver } from "../lib/health/pinned_get.ts";

const FAST: ProbeSettings = {
  timeoutMs: 2000,
  maxRetries: 0,
  initialRetryDelayMs: 10,
  maxRetryDelayMs: 100,
  backoff: 2,
  additionalEndpoints: [],
};

/** 169.254.1.1 written in every IPv6 form that carries an IPv4 address. */
const CARRYING_169_254_1_1 = [
  "::ffff:169.254.1.1",
  "::ffff:a9fe:101",
  "::169.254.1.1",
  "::a9fe:101",
  "::ffff:0:a9fe:101",
  "64:ff9b::a9fe:101",
  "64:ff9b::169.254.1.1",
  "64:ff9b:1:a9fe:1:100::",
  "2002:a9fe:101::",
  "2002:a9fe:101:1::1",
];

/** Every address the policy must refuse: v4, v6 link-local, EC2 v6 metadata, carried forms. */
const DENIED = [
  "169.254.1.1",
  "169.254.169.254",
  "fe80::1",
  "fd00:ec2::254",
  ...CARRYING_169_254_1_1,
];

/** A resolver answering `answers` for every name, counting the names asked. */
function fixedResolver(answers: string[]) {
  const asked: string[] = [];
  const resolve: Resolver = (hostname) => {
    asked.push(hostname);
    return Promise.resolve([...answers]);
  };
  return { resolve, asked };
}

/** A connector that records what it was asked to send and answers 200 without any I/O. */
function recordingSend() {
  const sent: PinnedRequest[] = [];
  const send = (r: PinnedRequest) => {
    sent.push(r);
    return Promise.resolve(200);
  };
  return { send, sent };
}

/** A raw TCP listener on 127.0.0.1 that counts every connection it accepts. */
function connectionCounter() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const state = { connections: 0 };
  const loop = (async () => {
    for await (const conn of listener) {
      state.connections++;
      conn.close();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    state,
    async close() {
      listener.close();
      await loop;
    },
  };
}

/** An HTTP stub on 127.0.0.1 recording the Host header of each request. */
function hostRecorder(tls?: { cert: string; key: string }) {
  const hosts: string[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {}, ...tls },
    (req) => {
      hosts.push(req.headers.get("host") ?? "");
      return new Response("ok");
    },
  );
  return { server, port: server.addr.port, hosts };
}

Deno.test("embeddedIPv4() finds 169.254.1.1 in every IPv6 form that carries it", () => {
  for (const ip of CARRYING_169_254_1_1) {
    assert.ok(embeddedIPv4(ip).includes("169.254.1.1"), `${ip} → ${embeddedIPv4(ip)}`);
  }
  assert.deepEqual(embeddedIPv4("169.254.1.1"), []);
  assert.deepEqual(embeddedIPv4("2001:db8::a9fe:101"), []);
  assert.deepEqual(embeddedIPv4("not an address"), []);
});

Deno.test("refusedAddress() refuses link-local and metadata addresses in every form", () => {
  for (const ip of DENIED) assert.notEqual(refusedAddress(ip, []), null, ip);
  assert.equal(refusedAddress("2002:a9fe:101::", []), "169.254.1.1");
  // A zone-scoped address is not an address the policy can judge: refused as itself.
  assert.equal(refusedAddress("fe80::1%eth0", []), "fe80::1%eth0");
  for (const ip of ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.1", "2001:db8::1", "2002:a00:1::"]) {
    assert.equal(refusedAddress(ip, []), null, ip);
  }
});

Deno.test("refusedAddress() admits what HEALTH_CHECK_ALLOWED_NETWORKS covers", () => {
  for (const ip of ["169.254.1.1", ...CARRYING_169_254_1_1]) {
    assert.equal(refusedAddress(ip, [" 169.254.0.0/16 "]), null, ip);
  }
  assert.equal(refusedAddress("2002:a9fe:101::", ["2002::/16"]), null);
  assert.equal(refusedAddress("fe80::1", ["fe80::/10"]), null);
  assert.equal(refusedAddress("169.254.1.1", ["169.254.99.0/24"]), "169.254.1.1");
});

Deno.test("probe() refuses a host name resolving to a link-local address in any form and never connects", async () => {
  for (const ip of DENIED) {
    const { resolve, asked } = fixedResolver([ip]);
    const { send, sent } = recordingSend();
    const r = await probe(
      { health_check_url: "http://meta.test:8080/health", service_url: "http://meta.test:8080" },
      { ...FAST, maxRetries: 3 },
      undefined,
      { resolve, send },
    );
    assert.equal(r.healthy, false, ip);
    assert.equal(sent.length, 0, `${ip}: nothing was sent`);
    assert.deepEqual(asked, ["meta.test"], `${ip}: resolved once, at probe time`);
    assert.equal(r.attempts, 1, `${ip}: a refusal is not retried`);
    assert.equal(r.endpoints[0].status, null);
    assert.match(
      r.reason ?? "",
      /^http:\/\/meta\.test:8080\/health: refused: meta\.test resolves to .*link-local or cloud-metadata address; allow it in HEALTH_CHECK_ALLOWED_NETWORKS/,
    );
  }
});

Deno.test("probe() refuses a name with one allowed and one link-local address, and connects to neither", async () => {
  const counter = connectionCounter();
  try {
    for (const answers of [["127.0.0.1", "169.254.1.1"], ["::ffff:a9fe:101", "127.0.0.1"]]) {
      const { resolve } = fixedResolver(answers);
      const url = `http://two.test:${counter.port}/health`;
      // The real connector: a connection to 127.0.0.1 would reach the counter.
      const r = await probe({ health_check_url: url, service_url: "" }, FAST, undefined, {
        resolve,
      });
      assert.equal(r.healthy, false);
      assert.match(r.reason ?? "", /refused: two\.test resolves to /);
    }
    assert.equal(counter.state.connections, 0);
  } finally {
    await counter.close();
  }
});

Deno.test("probe() connects to the address it checked, with the name in Host, and resolves once", async () => {
  const { server, port, hosts } = hostRecorder();
  try {
    // "svc.test" resolves nowhere else: a second lookup by the connector would fail.
    const { resolve, asked } = fixedResolver(["127.0.0.1"]);
    const r = await probe(
      { health_check_url: `http://svc.test:${port}/health`, service_url: "" },
      FAST,
      undefined,
      { resolve },
    );
    assert.equal(r.healthy, true, r.reason ?? "");
    assert.deepEqual(asked, ["svc.test"]);
    assert.deepEqual(hosts, [`svc.test:${port}`]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() re-resolves at every attempt and refuses an answer that turned link-local", async () => {
  const answers = [["127.0.0.1"], ["169.254.169.254"]];
  let n = 0;
  const resolve: Resolver = () => Promise.resolve(answers[Math.min(n++, 1)]);
  const sent: string[][] = [];
  const send = (r: PinnedRequest) => {
    sent.push(r.addresses);
    return Promise.resolve(503);
  };
  const r = await probe(
    { health_check_url: "http://rebind.test/health", service_url: "" },
    { ...FAST, maxRetries: 2, initialRetryDelayMs: 1 },
    undefined,
    { resolve, send },
  );
  assert.equal(r.healthy, false);
  assert.deepEqual(sent, [["127.0.0.1"]], "only the first, allowed answer was connected to");
  assert.equal(r.attempts, 2);
  assert.match(r.reason ?? "", /refused: rebind\.test resolves to 169\.254\.169\.254/);
});

Deno.test("probe() counts a hanging lookup against the attempt's timeout", async () => {
  const { send, sent } = recordingSend();
  const t0 = performance.now();
  const r = await probe(
    { health_check_url: "http://slow-dns.test/health", service_url: "" },
    { ...FAST, timeoutMs: 100 },
    undefined,
    { resolve: () => new Promise<string[]>(() => {}), send },
  );
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(r.endpoints[0].error, "timed out after 100 ms");
  assert.equal(sent.length, 0);
});

Deno.test("probe() checks additional endpoints on service_url by name as well", async () => {
  const { server, port } = hostRecorder();
  try {
    const resolve: Resolver = (h) => Promise.resolve(h === "meta.test" ? ["169.254.1.1"] : []);
    const r = await probe(
      { health_check_url: `http://127.0.0.1:${port}/health`, service_url: "http://meta.test" },
      { ...FAST, additionalEndpoints: ["/ready"] },
      undefined,
      { resolve },
    );
    assert.equal(r.healthy, false);
    assert.deepEqual(r.endpoints.map((e) => e.ok), [true, false]);
    assert.match(r.endpoints[1].error ?? "", /^refused: meta\.test resolves to 169\.254\.1\.1/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() refuses metadata names and link-local literals without resolving", async () => {
  const { resolve, asked } = fixedResolver(["127.0.0.1"]);
  const { send, sent } = recordingSend();
  for (
    const url of [
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://METADATA./",
      "http://169.254.169.254/latest/meta-data",
      "http://[::ffff:a9fe:a9fe]/",
      "http://[2002:a9fe:a9fe::]/",
    ]
  ) {
    const r = await probe({ health_check_url: url, service_url: "" }, FAST, undefined, {
      resolve,
      send,
    });
    assert.equal(r.healthy, false, url);
    assert.match(r.endpoints[0].error ?? "", /^refused: /, url);
  }
  assert.deepEqual(asked, []);
  assert.equal(sent.length, 0);
});

Deno.test("probe() probes what HEALTH_CHECK_ALLOWED_NETWORKS allows, by network or by name", async () => {
  for (const allowed of [["169.254.0.0/16"], ["Meta.Test."]]) {
    const { resolve } = fixedResolver(["169.254.1.1"]);
    const { send, sent } = recordingSend();
    const r = await probe(
      { health_check_url: "http://meta.test/health", service_url: "" },
      { ...FAST, allowedNetworks: allowed },
      undefined,
      { resolve, send },
    );
    assert.equal(r.healthy, true, `${allowed}: ${r.reason}`);
    assert.deepEqual(sent.map((s) => s.addresses), [["169.254.1.1"]]);
  }
});

Deno.test("probe() does not follow a redirect to a name, nor resolve it", async () => {
  const asked: string[] = [];
  const resolve: Resolver = (h) => {
    asked.push(h);
    return Promise.resolve(["127.0.0.1"]);
  };
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response(null, { status: 302, headers: { location: "http://meta.test/" } }),
  );
  try {
    const r = await probe(
      { health_check_url: `http://svc.test:${server.addr.port}/health`, service_url: "" },
      FAST,
      undefined,
      { resolve },
    );
    assert.equal(r.endpoints[0].status, 302);
    assert.equal(r.endpoints[0].error, "redirect not followed");
    assert.deepEqual(asked, ["svc.test"]);
  } finally {
    await server.shutdown();
  }
});

// Test-only self-signed certificate and key for the name "pinned.test" (2025–2125).
const PINNED_CERT = `-----BEGIN CERTIFICATE-----
MIIBejCCAR+gAwIBAgIBATAKBggqhkjOPQQDAjAWMRQwEgYDVQQDDAtwaW5uZWQu
dGVzdDAgFw0yNTAxMDEwMDAwMDBaGA8yMTI1MDEwMTAwMDAwMFowFjEUMBIGA1UE
AwwLcGlubmVkLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARhV2EaJqNh
VsKBlkqSs7IUdGUFLffRysc3NkbMMoubJ1kykLjZ8mJxTHCVJmZd02JdKwkNl43i
ZtLfxfFXsJ9Ko1wwWjAWBgNVHREEDzANggtwaW5uZWQudGVzdDAMBgNVHRMBAf8E
AjAAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBQvf4gPl3Eo2S4rTrIf
LEHnIKxfaTAKBggqhkjOPQQDAgNJADBGAiEAnxBQqF+j2gLftO93tMGbS+VPqnCi
WxN2ATCWcDWdX8gCIQDwe3c1u1BV1p5SxwS/ehg6i/5LcWr4kYkFvFrsbMSnMA==
-----END CERTIFICATE-----
`;
const PINNED_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzOZPoVPZq2IxivPD
CLqzbWDwZ9xC1AiF0TYaumL4wDWhRANCAARhV2EaJqNhVsKBlkqSs7IUdGUFLffR
ysc3NkbMMoubJ1kykLjZ8mJxTHCVJmZd02JdKwkNl43iZtLfxfFXsJ9K
-----END PRIVATE KEY-----
`;

Deno.test("probe() pins https to the checked address and verifies the certificate against the name", async () => {
  const { server, port, hosts } = hostRecorder({ cert: PINNED_CERT, key: PINNED_KEY });
  try {
    const { resolve } = fixedResolver(["127.0.0.1"]);
    const send = (r: PinnedRequest) => pinnedGet({ ...r, caCerts: [PINNED_CERT] });
    const ok = await probe(
      { health_check_url: `https://pinned.test:${port}/health`, service_url: "" },
      FAST,
      undefined,
      { resolve, send },
    );
    assert.equal(ok.healthy, true, ok.reason ?? "");
    assert.deepEqual(hosts, [`pinned.test:${port}`]);

    // Same address, another name: the certificate is checked against the name, not the IP.
    const other = await probe(
      { health_check_url: `https://other.test:${port}/health`, service_url: "" },
      FAST,
      undefined,
      { resolve, send },
    );
    assert.equal(other.healthy, false);
    assert.match(other.reason ?? "", /other\.test.*(altnames|certificate)/i);
    assert.equal(hosts.length, 1);
  } finally {
    await server.shutdown();
  }
});

// --- End to end through /etc/hosts and the system resolver --------------------------------

const HOSTS = "/etc/hosts";
const hostsWritable = await Deno.open(HOSTS, { append: true }).then(
  (f) => (f.close(), true),
  () => false,
);

/** Runs `fn` with `entries` ("address name") added to /etc/hosts, removed afterwards. */
async function withHostsEntries(entries: string[], fn: () => Promise<void>): Promise<void> {
  const marker = `# ssrf_test ${crypto.randomUUID()}`;
  const current = await Deno.readTextFile(HOSTS);
  const lead = current === "" || current.endsWith("\n") ? "" : "\n";
  const added = entries.map((e) => `${e} ${marker}\n`).join("");
  await Deno.writeTextFile(HOSTS, lead + added, { append: true });
  try {
    await fn();
  } finally {
    // Only our lines go: other entries may have changed meanwhile.
    const text = await Deno.readTextFile(HOSTS);
    await Deno.writeTextFile(HOSTS, text.split("\n").filter((l) => !l.includes(marker)).join("\n"));
  }
}

Deno.test({
  name: "probe() refuses names that /etc/hosts maps to 169.254.x, alone or beside 127.0.0.1",
  ignore: !hostsWritable,
  async fn() {
    const id = crypto.randomUUID().slice(0, 8);
    const [only, mapped, both] = ["only", "mapped", "both"].map((k) => `ssrf-${k}-${id}.test`);
    const counter = connectionCounter();
    try {
      await withHostsEntries(
        [
          `169.254.77.1 ${only}`,
          `::ffff:169.254.77.2 ${mapped}`,
          `127.0.0.1 ${both}`,
          `169.254.77.3 ${both}`,
        ],
        async () => {
          // The system resolver does see the entries…
          const seen = await lookup(both, { all: true });
          assert.deepEqual(seen.map((a) => a.address).sort(), ["127.0.0.1", "169.254.77.3"]);
          // …and the default resolver and connector refuse every one of them.
          for (const name of [only, mapped, both]) {
            const url = `http://${name}:${counter.port}/health`;
            const r = await probe({ health_check_url: url, service_url: "" }, FAST);
            assert.equal(r.healthy, false, name);
            assert.match(r.reason ?? "", new RegExp(`refused: ${name} resolves to `), name);
          }
        },
      );
      assert.equal(counter.state.connections, 0, "nothing connected to 127.0.0.1");
    } finally {
      await counter.close();
    }
    const after = await Deno.readTextFile(HOSTS);
    assert.ok(!after.includes(id), "the /etc/hosts entries were removed");
  },
});

Deno.test("probe() still probes localhost through the system resolver", async () => {
  const { server, port, hosts } = hostRecorder();
  try {
    const r = await probe(
      { health_check_url: `http://localhost:${port}/health`, service_url: "" },
      FAST,
    );
    assert.equal(r.healthy, true, r.reason ?? "");
    assert.deepEqual(hosts, [`localhost:${port}`]);
  } finally {
    await server.shutdown();
  }
});
