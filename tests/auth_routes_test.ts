/**
 * Authorization by the route that handles the request, tried the way an attacker would:
 * every operation of /openapi.json, spelled every way that reaches the same route (each
 * letter of each static segment percent-encoded, upper- and lower-case hex, `//`, a
 * trailing `/`, `/./`, `/x/../`, encoded query names and values), by every caller (no
 * token, a wrong token, each single scope, admin). A spelling answers exactly what the
 * canonical request answers for that caller, and nobody without the route's scopes gets a
 * 2xx. Sent over TCP as raw request lines: `fetch` would normalise the spellings away.
 */
import assert from "node:assert/strict";
import { embeddedSettings, ioTest, startService } from "./_helpers.ts";
import { type RawAnswer, rawRequest } from "./_http.ts";
import { clientKey, type Scope, SCOPES } from "../lib/auth.ts";

const WRONG = "wrong-token-0123456789abcdef";
const tokenOf = (s: Scope) => `tok-${s.replace(":", "-")}-0123456789abcdef`;
const INLINE = SCOPES.map((s) => `${s.replace(":", "-")}:${tokenOf(s)}:${s}`).join(";");

interface Caller {
  name: string;
  token?: string;
  scopes: Scope[];
}
const CALLERS: Caller[] = [
  { name: "no token", scopes: [] },
  { name: "wrong token", token: WRONG, scopes: [] },
  ...SCOPES.map((s) => ({ name: s, token: tokenOf(s), scopes: [s] })),
];

interface Operation {
  method: string;
  template: string;
  needs: Scope[] | null;
  reveal: Scope[];
  /** The statuses its OpenAPI responses document (a 503 "no healthy instance" is one). */
  documents: number[];
}

const SECRET = "hunter2-in-clear";
const ENV = "environment=development";

/** A request to `op` that its handler can answer the same way every time. */
function concrete(op: Operation): { path: string; query: string; body?: string } {
  const path = op.template
    .replace("{key}", op.method === "DELETE" ? "gone" : "k1")
    .replace("{service_name}", "svc")
    .replace("{name}", "f1");
  const json = (v: unknown) => JSON.stringify(v);
  const bodies: Record<string, string> = {
    "POST /api/v1/config": json({ key: "fresh", value: 1, environment: "development" }),
    "PUT /api/v1/config/{key}": json({ value: SECRET, environment: "development", secret: true }),
    "POST /api/v1/config/bulk": json({ keys: ["k1"], environment: "development" }),
    "POST /api/v1/config/{key}/rollback": json({ environment: "development", version: 1 }),
    "POST /api/v1/registry/register": json({
      service_name: "svc",
      service_url: "http://127.0.0.1:9",
      metadata: { instance_id: "i1" },
    }),
    "POST /api/v1/registry/deregister": json({ service_name: "svc", instance_id: "nope" }),
    "POST /api/v1/registry/heartbeat": json({ service_name: "svc", instance_id: "nope" }),
    "POST /api/v1/feature-flags/evaluate": json({ flag_name: "f1" }),
    "POST /api/v1/feature-flags/evaluate/boolean": json({ flag_name: "f1" }),
    "POST /api/v1/feature-flags/evaluate/bulk": json({ flags: [{ flag_name: "f1" }] }),
    "POST /ofrep/v1/evaluate/flags/{key}": json({ context: {} }),
    "POST /ofrep/v1/evaluate/flags": json({ context: {} }),
    "POST /api/client/register": json({ appName: "sdk", instanceId: "i1", strategies: [] }),
    "POST /api/client/metrics": json({
      appName: "sdk",
      bucket: { start: "s", stop: "t", toggles: { f1: { yes: 1, no: 0, variants: {} } } },
    }),
    "POST /api/frontend": json({ context: { userId: "u1" } }),
    "POST /api/frontend/client/register": json({ appName: "web", instanceId: "browser" }),
    "POST /api/frontend/client/metrics": json({
      appName: "web",
      bucket: { start: "s", stop: "t", toggles: { f1: { yes: 1, no: 0, variants: {} } } },
    }),
  };
  const body = bodies[`${op.method} ${op.template}`] ??
    (op.method === "POST" || op.method === "PUT" ? "{}" : undefined);
  return { path, query: ENV, body };
}

/** The same route, spelled otherwise: [label, path]. */
function spellings(op: Operation, path: string): [string, string][] {
  const tpl = op.template.split("/");
  const segs = path.split("/");
  const out = new Map<string, string>();
  const at = (i: number, seg: string) => segs.map((s, j) => (j === i ? seg : s)).join("/");
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    out.set(`${at(i, "/" + s)}`, `"//" before segment ${i}`);
    out.set(`${at(i, "./" + s)}`, `"/./" before segment ${i}`);
    out.set(`${at(i, "x/../" + s)}`, `"/x/../" before segment ${i}`);
    if (tpl[i]?.startsWith("{")) continue;
    for (let j = 0; j < s.length; j++) {
      if (!/[A-Za-z]/.test(s[j])) continue;
      const hex = s.charCodeAt(j).toString(16);
      for (const h of [hex.toLowerCase(), hex.toUpperCase()]) {
        out.set(at(i, s.slice(0, j) + "%" + h + s.slice(j + 1)), `%${h} for "${s[j]}" of ${s}`);
      }
    }
  }
  if (path !== "/") out.set(path + "/", "trailing /");
  return [...out].map(([p, label]) => [label, p]);
}

const QUERY_SPELLINGS: [string, string][] = [
  ["encoded query name", "%65nvironment=development"],
  ["encoded query value", "environment=%64evelopment"],
  ["upper-case hex in the query", "%65nvironment=%64%65velopment"],
];
const REVEAL_SPELLINGS: [string, string][] = [
  ["reveal=true", `${ENV}&reveal=true`],
  ["reveal=tru%65", `${ENV}&reveal=tru%65`],
  ["%72eveal=true", `${ENV}&%72eveal=true`],
  ["reveal=%74rue", `${ENV}&reveal=%74rue`],
  ["reveal=%74%72%75%65", `${ENV}&reveal=%74%72%75%65`],
];

function holds(c: Caller, needs: readonly Scope[]): boolean {
  return c.scopes.includes("admin") || needs.every((s) => c.scopes.includes(s));
}

/** What must be equal between a spelling's answer and the canonical one. */
function outcome(a: RawAnswer): string {
  if (a.status < 400) return String(a.status);
  let detail = "";
  try {
    detail = JSON.parse(a.body).detail ?? "";
  } catch { /* not JSON */ }
  return `${a.status} ${detail}`;
}

/** The service with every test token, served over TCP on loopback; dispose to stop both. */
async function served(over: Record<string, string> = {}) {
  const svc = await startService(
    embeddedSettings({ API_TOKENS: INLINE, AUTH_FAILURES_PER_MINUTE: "0", ...over }),
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, svc.app.fetch);
  return {
    svc,
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await svc[Symbol.asyncDispose]();
    },
  };
}

/** Runs `jobs` with at most `n` at once. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  }));
  return out;
}

ioTest(
  "auth: every route × every spelling × every caller answers as the canonical request, and no 2xx without the scope",
  async () => {
    await using s = await served({
      SERVICE_HEALTH_CHECK_ENABLED: "false",
      HEALTH_CHECK_MAX_RETRIES: "0",
      HEALTH_CHECK_TIMEOUT: "0.2",
    });
    const port = s.port;
    const send = (
      c: Caller,
      method: string,
      target: string,
      body?: string,
      headers: Record<string, string> = {},
    ) =>
      rawRequest(port, {
        method,
        target,
        body,
        headers: {
          ...headers,
          ...(c.token ? { authorization: `Bearer ${c.token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
      });
    const admin = CALLERS.at(-1)!;
    assert.equal(admin.name, "admin");

    const doc = JSON.parse((await send(CALLERS[0], "GET", "/openapi.json")).body);
    const ops: Operation[] = [];
    for (const [template, item] of Object.entries(doc.paths as Record<string, object>)) {
      for (const [method, o] of Object.entries(item as Record<string, Record<string, never>>)) {
        const security = o.security as Record<string, Scope[]>[] | undefined;
        assert.ok(security !== undefined, `${method} ${template} documents no security`);
        ops.push({
          method: method.toUpperCase(),
          template,
          needs: security.length === 0 ? null : security.flatMap((s) => s.bearer),
          reveal: (o["x-reveal-scopes"] as Scope[] | undefined) ?? [],
          documents: Object.keys(o.responses ?? {}).map(Number),
        });
      }
    }
    assert.ok(ops.length >= 35, `only ${ops.length} operations documented`);
    for (
      const must of [
        "GET /metrics",
        "GET /api/v1/config/watch",
        "GET /docs",
        "GET /api/client/features",
        "POST /api/client/register",
        "POST /api/client/metrics",
        "GET /api/frontend",
        "POST /api/frontend",
        "POST /api/frontend/client/metrics",
        "POST /api/frontend/client/register",
        "OPTIONS /api/frontend",
      ]
    ) {
      assert.ok(ops.some((o) => `${o.method} ${o.template}` === must), must);
    }

    // Steady state: k1 is a secret, svc has an instance; each request below answers the
    // same every time it is sent.
    await send(
      admin,
      "POST",
      "/api/v1/config",
      JSON.stringify({
        key: "k1",
        value: SECRET,
        environment: "development",
        secret: true,
      }),
    );
    for (const op of ops) {
      const c = concrete(op);
      await send(admin, op.method, `${c.path}?${c.query}`, c.body);
    }

    let checked = 0;
    const failures: string[] = [];
    const check = async (
      op: Operation,
      needs: readonly Scope[] | null,
      canonical: string,
      variants: [string, string][],
      body?: string,
    ) => {
      for (const caller of CALLERS) {
        const base = await send(caller, op.method, canonical, body);
        const expected = outcome(base);
        const answers = await pool(
          variants.map(([label, target]) => async () => {
            const a = await send(caller, op.method, target, body);
            return { label, target, a };
          }),
          8,
        );
        for (
          const { label, target, a } of [
            { label: "canonical", target: canonical, a: base },
            ...answers,
          ]
        ) {
          checked++;
          const where = `${caller.name} ${op.method} ${target} (${label})`;
          if (a.status >= 500 && !op.documents.includes(a.status)) {
            failures.push(`${where}: ${a.status}`);
          }
          if (outcome(a) !== expected) {
            failures.push(`${where}: ${outcome(a)}, canonical ${expected}`);
          }
          if (needs !== null && !holds(caller, needs) && a.status < 300) {
            failures.push(`${where}: ${a.status} without ${needs.join("+")}`);
          }
          if (a.body.includes(SECRET) && !holds(caller, ["config:read", "secrets:read"])) {
            failures.push(`${where}: the secret in clear without secrets:read`);
          }
        }
      }
    };

    for (const op of ops) {
      const c = concrete(op);
      const variants: [string, string][] = [
        ...spellings(op, c.path).map(([l, p]): [string, string] => [l, `${p}?${c.query}`]),
        ...QUERY_SPELLINGS.map(([l, q]): [string, string] => [l, `${c.path}?${q}`]),
      ];
      await check(op, op.needs, `${c.path}?${c.query}`, variants, c.body);
      if (op.reveal.length > 0) {
        const needs = [...op.needs!, ...op.reveal];
        const [first, ...rest] = REVEAL_SPELLINGS;
        await check(
          op,
          needs,
          `${c.path}?${first[1]}`,
          [
            ...rest.map(([l, q]): [string, string] => [l, `${c.path}?${q}`]),
            ...spellings(op, c.path).map(([l, p]): [string, string] => [l, `${p}?${first[1]}`]),
          ],
        );
      }
    }
    console.log(`${ops.length} operations, ${checked} requests checked`);
    assert.deepEqual(failures.slice(0, 40), [], `${failures.length} of ${checked} failed`);
    assert.ok(checked > 10_000, `${checked} requests checked`);
  },
);

ioTest(
  "auth: unknown paths, upper-case paths and a Host that would move the URL give nothing away",
  async () => {
    await using s = await served();
    const port = s.port;
    const auth = (t?: string): Record<string, string> => t ? { authorization: `Bearer ${t}` } : {};
    for (const target of ["/nope", "/API/v1/config?environment=development", "/api/v2/x"]) {
      for (const c of CALLERS) {
        const a = await rawRequest(port, { method: "GET", target, headers: auth(c.token) });
        // 401 before 404: without a valid token nothing tells a route from no route.
        assert.equal(a.status, c.token === undefined || c.token === WRONG ? 401 : 404, target);
      }
    }
    const evil = [
      "x?reveal=true&environment=development&",
      "x/api/v1/config/k1?reveal=true&",
      "x#",
      "x y",
    ];
    for (const host of evil) {
      for (const c of CALLERS) {
        const a = await rawRequest(port, {
          method: "GET",
          target: "/api/v1/config/k1?environment=development",
          headers: { ...auth(c.token), host },
        });
        // RFC 9112 §3.2: a Host with an invalid value is a 400, for every caller.
        assert.equal(a.status, 400, `${c.name} Host: ${host}`);
        assert.match(JSON.parse(a.body).errors[0].field, /^Host$/);
      }
    }
  },
);

Deno.test("auth: failed authentications are limited per client address", async () => {
  await using svc = await startService(
    embeddedSettings({ API_TOKENS: INLINE, AUTH_FAILURES_PER_MINUTE: "5" }),
  );
  const from = (hostname: string) => ({ remoteAddr: { hostname, port: 1, transport: "tcp" } });
  const get = (path: string, token: string | undefined, addr: string) =>
    svc.app.request(
      path,
      { headers: token ? { authorization: `Bearer ${token}` } : {} },
      from(addr),
    );
  for (let i = 0; i < 5; i++) {
    const r = await get(`/%61pi/v1/config?environment=development&n=${i}`, WRONG, "10.0.0.1");
    assert.equal(r.status, 401);
    await r.body?.cancel();
  }
  // Now every request of that address that needs a token is refused, right token or not.
  for (const token of [WRONG, undefined, tokenOf("admin")]) {
    const r = await get("/api/v1/config?environment=development", token, "10.0.0.1");
    assert.equal(r.status, 429);
    const wait = Number(r.headers.get("retry-after"));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.match((await r.json()).detail, /AUTH_FAILURES_PER_MINUTE/);
  }
  // Other addresses and open routes are not affected.
  const other = await get("/api/v1/config?environment=development", tokenOf("admin"), "10.0.0.2");
  assert.equal(other.status, 200);
  await other.body?.cancel();
  const health = await get("/health", undefined, "10.0.0.1");
  assert.notEqual(health.status, 429);
  await health.body?.cancel();
});

ioTest(
  "auth: a body request is handled as it was authorized: no backslash or lower-case method gets past a scope",
  async () => {
    await using s = await served();
    const port = s.port;
    const reader = { authorization: `Bearer ${tokenOf("config:read")}` };
    const json = { ...reader, "content-type": "application/json" };
    const body = JSON.stringify({ key: "pwn", value: 1, environment: "development" });
    // `new Request(url)` turns `\` into `/` and `post` into `POST`: the handler must see
    // the request the scopes were checked on.
    for (const [method, target] of [["POST", "/api/v1\\config"], ["POST", "/api\\v1/config"]]) {
      const a = await rawRequest(port, { method, target, headers: json, body });
      assert.ok(a.status === 401 || a.status === 404, `${method} ${target}: ${a.status}`);
    }
    for (
      const method of [
        "post",
        "pUt",
        "get",
        "Head",
        "delete",
        "CONNECT",
        "TRACE",
        "X".repeat(500),
      ]
    ) {
      const a = await rawRequest(port, {
        method,
        target: "/api/v1/config",
        headers: json,
        body,
      });
      // Deno itself refuses CONNECT with a path (400) before the service sees it.
      assert.equal(a.status, method === "CONNECT" ? 400 : 501, method.slice(0, 10));
      if (a.status === 501) assert.match(a.headers["content-type"], /problem\+json/);
    }
    const list = await rawRequest(port, {
      method: "GET",
      target: "/api/v1/config?environment=development",
      headers: reader,
    });
    assert.equal(list.status, 200);
    assert.deepEqual(JSON.parse(list.body), []);
    // Unknown methods share one metric series: they cannot grow /metrics.
    const metrics = await rawRequest(port, {
      method: "GET",
      target: "/metrics",
      headers: { authorization: `Bearer ${tokenOf("admin")}` },
    });
    assert.equal(metrics.body.includes("XXXXXXXX"), false);
    assert.match(metrics.body, /method="OTHER",route="unmatched",status="501"/);
  },
);

Deno.test("auth: clientKey() limits IPv6 clients by their /64", () => {
  for (
    const [address, key] of [
      ["192.0.2.7", "addr:192.0.2.7"],
      ["::ffff:192.0.2.7", "addr:192.0.2.7"],
      ["2001:db8:1:2:aaaa::1", "addr:2001:db8:1:2::/64"],
      ["2001:db8:1:2::ffff", "addr:2001:db8:1:2::/64"],
      ["[2001:db8::1]", "addr:2001:db8:0:0::/64"],
      ["fe80::1%eth0", "addr:fe80:0:0:0::/64"],
      ["::1", "addr:0:0:0:0::/64"],
    ]
  ) assert.equal(clientKey(address), key, address);
});
