/**
 * Seeded fuzz suite on the embedded defaults (SQLite, in-process registry, a flags file).
 *
 * - Every route of routes/*.ts gets random bodies (wrong types, huge, empty and control-char
 *   strings, deep nesting, `1e309`, `-0`, long keys, invalid/truncated JSON, non-UTF-8
 *   bytes), paths (random segments, percent-encoding, `..`, `%2F`, `%00`, very long), query
 *   strings (repeated, valueless, garbage) and headers (If-Match, If-None-Match, X-User,
 *   X-Request-Id, Content-Type, X-Environment, Authorization, Last-Event-ID); every path
 *   also gets every method (405 with the right `Allow` where not allowed). No answer may be
 *   a 5xx (except the documented 503 of `…/url` when no instance is healthy) or hang; every
 *   4xx is problem+json with `status` and `detail` (OFREP 400/404: its own `{key?,
 *   errorCode, errorDetails?}`); every answer carries a valid X-Request-Id; watch bodies are
 *   read and cancelled, and no watcher is left behind. The same again with API tokens.
 * - Validation errors name the field; SQL- and traversal-looking keys are refused or kept
 *   literally; secret values and API tokens never reach the log.
 *
 * The PRNG is mulberry32 with the seed in the test names; `FUZZ_SEED=0x… deno test -A
 * tests/fuzz_test.ts` replays another one. A failure prints the request that caused it.
 */
import assert from "node:assert/strict";
import {
  call,
  capturedLog,
  embeddedSettings,
  startService,
  tempDir,
  tempFile,
  waitFor,
} from "./_helpers.ts";
import { spawnService } from "./_process.ts";
import { log } from "../lib/log.ts";
import { requestPath } from "../routes/access.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? "0x5eedc0de") >>> 0;
const SEED_HEX = `0x${SEED.toString(16)}`;
/** Random requests of the main fuzz test (the method sweep and targeted cases come on top). */
const RANDOM_REQUESTS = Number(Deno.env.get("FUZZ_REQUESTS") ?? 2_000);
/** An answer (or the first SSE chunk) slower than this is a hang. */
const HANG_MS = 5_000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// --- PRNG and generators -------------------------------------------------------------------

class Rng {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }
  /** mulberry32: a float in [0, 1). */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

/** A JSON token written as is: numbers JSON.stringify cannot produce (`1e309`, `-0`). */
class Raw {
  constructor(readonly text: string) {}
}
/** A JSON object as entries: keeps `__proto__`, duplicate and very long keys. */
class Obj {
  constructor(readonly entries: [string, unknown][]) {}
  static of(o: Record<string, unknown>): Obj {
    return new Obj(Object.entries(o));
  }
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj) {
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(",")}}`;
  }
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  return JSON.stringify(v) ?? "null";
}

const WEIRD_STRINGS = [
  "",
  " ",
  "development",
  "production",
  "staging",
  "qa",
  "DEVELOPMENT",
  "null",
  "true",
  "0",
  "-0",
  "1e309",
  "NaN",
  "\u0000",
  "a\u0000b",
  "\t\r\n",
  "\u001b[31m",
  "\u007f",
  "é",
  "日本語",
  "😀",
  "\u202e\u202d",
  "\ufeff",
  "\u200b",
  "\ud800",
  "\udfff",
  "x' OR '1'='1",
  "a;DROP TABLE config_entries;--",
  "%27",
  "../etc/passwd",
  "..%2F..%2Fx",
  "%2e%2e",
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "%s%n%x",
  "\\",
  '"',
  "/",
  "a/b",
  ".",
  "..",
  "status",
  "watch",
  "fuzz.key",
  "dark-mode",
  "fuzz-svc",
  "http://127.0.0.1:1/",
  "http://169.254.169.254/latest/meta-data",
  "http://[fe80::1]/",
  "file:///etc/passwd",
  "javascript:alert(1)",
];
const CHARS = [
  ..."abcXYZ019._:-/ ~!@#$%^&*()+=[]{}|;'\",<>?`",
  "\u0000",
  "\u0001",
  "\u001f",
  "\u007f",
  "\u0085",
  "\u00a0",
  "é",
  "ß",
  "\u2028",
  "\u202e",
  "中",
  "😀",
  "\ud800",
  "\udc00",
  "\ufffd",
  "\ufeff",
];

/** Percent-encodes any string (lone surrogates become U+FFFD first). */
const pct = (s: string) => encodeURIComponent(s.toWellFormed());

function randomChars(r: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += r.pick(CHARS);
  return s;
}

function fuzzString(r: Rng): string {
  switch (r.int(6)) {
    case 0:
    case 1:
    case 2:
      return r.pick(WEIRD_STRINGS);
    case 3:
      return randomChars(r, r.int(40));
    case 4:
      return r.pick(["a", "é", "😀", "x"]).repeat(r.pick([128, 129, 256, 257, 1025, 5000]));
    default:
      return r.pick(WEIRD_STRINGS) + randomChars(r, r.int(8));
  }
}

const NUMBERS: unknown[] = [
  0,
  1,
  -1,
  1.5,
  2 ** 31,
  2 ** 53 + 2,
  -(2 ** 63),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  86_401,
  1_000_000_000,
  new Raw("1e309"),
  new Raw("-1e309"),
  new Raw("-0"),
  new Raw("1E-400"),
  new Raw("0.1e+5"),
  new Raw("123456789012345678901234567890"),
];

const KEYS = [
  "",
  "key",
  "value",
  "environment",
  "service_name",
  "secret",
  "version",
  "flag_name",
  "context",
  "metadata",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "a.b",
  "0",
  "k".repeat(10_000),
];

function fuzzKey(r: Rng): string {
  return r.chance(0.6) ? r.pick(KEYS) : fuzzString(r);
}

function fuzzValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 5 : 9)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(NUMBERS);
    case 3:
    case 4:
      return fuzzString(r);
    case 5:
    case 6:
      return Array.from({ length: r.int(5) }, () => fuzzValue(r, depth + 1));
    case 7:
      return new Obj(Array.from({ length: r.int(5) }, () => [fuzzKey(r), fuzzValue(r, depth + 1)]));
    default: {
      const n = r.pick([100, 5_000, 100_000]);
      return new Raw(
        r.chance(0.5) ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" +
          "}".repeat(n),
      );
    }
  }
}

/** Replaces, removes or adds fields of a valid body, or swaps it for something else. */
function mutate(r: Rng, base: Record<string, unknown>): unknown {
  if (r.chance(0.05)) return fuzzValue(r);
  const entries: [string, unknown][] = Object.entries(base);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const op = r.int(10);
    if (op < 5 && entries.length > 0) entries[r.int(entries.length)][1] = fuzzValue(r);
    else if (op < 7 && entries.length > 0) entries.splice(r.int(entries.length), 1);
    else if (op < 9) entries.push([fuzzKey(r), fuzzValue(r)]);
    else if (entries.length > 0) entries.push([entries[r.int(entries.length)][0], fuzzValue(r)]);
  }
  return new Obj(entries);
}

const INVALID_JSON = [
  "{",
  "}",
  '{"key":}',
  "[1,2",
  "nul",
  "{'key':1}",
  '{"key":"a"}}',
  '{"key":"a",}',
  "\u0000",
  "undefined",
  "NaN",
  "Infinity",
  '{"key":"\\x41"}',
  '{"key":"\\ud800"}',
  '"unterminated',
  "{} trailing",
  "\ufeff{}",
];

const enc = new TextEncoder();

/** A request body: text or bytes, usually JSON. */
function fuzzBody(r: Rng, base: () => Record<string, unknown>): string | Uint8Array {
  const roll = r.int(100);
  if (roll < 62) return toJson(r.chance(0.15) ? base() : mutate(r, base()));
  if (roll < 70) return toJson(fuzzValue(r));
  if (roll < 76) return r.pick(INVALID_JSON);
  if (roll < 82) {
    const text = toJson(mutate(r, base()));
    return text.slice(0, r.int(text.length));
  }
  if (roll < 87) {
    // Not UTF-8: stray continuation bytes, overlong forms, surrogate halves, 0xFF.
    const bad = r.pick([
      [0xff],
      [0xfe, 0xff],
      [0xc3, 0x28],
      [0xe0, 0x80, 0x80],
      [0xed, 0xa0, 0x80],
      [
        0x80,
      ],
    ]);
    const text = toJson(base());
    const at = text.indexOf('"', 2) + 1 || 1;
    const head = enc.encode(text.slice(0, at));
    const tail = enc.encode(text.slice(at));
    return new Uint8Array([...head, ...bad, ...tail]);
  }
  if (roll < 92) return r.pick(["", " ", "\n", "null", "[]", "{}", '""', "0"]);
  if (roll < 95) {
    // Over CONFIG_MAX_VALUE_BYTES (413 naming value) or over the 1 MiB body limit (413).
    const b = base();
    const big = "v".repeat(r.chance(0.5) ? 300_000 : 1_100_000);
    return toJson(Obj.of({ ...b, value: big, context: { big }, metadata: { big } }));
  }
  const b = base();
  const n = r.pick([1_000, 50_000, 200_000]);
  return toJson(Obj.of({ ...b, value: new Raw("[".repeat(n) + "]".repeat(n)) }));
}

// --- Endpoints -------------------------------------------------------------------------------

type Pairs = [string, string][];

interface Endpoint {
  method: string;
  /** The route as written in routes/*.ts (`{param}`). */
  route: string;
  /** Fills the path parameters. */
  path: (r: Rng) => string;
  /** Valid-ish query parameters, mutated by the fuzzer. */
  query?: (r: Rng) => Pairs;
  /** A valid body, mutated by the fuzzer. */
  body?: (r: Rng) => Record<string, unknown>;
  /** A long poll: `wait` stays short whatever the fuzzer does. */
  longPoll?: boolean;
}

const ENVS = ["development", "staging", "production"];
const KNOWN_KEYS = ["fuzz.key", "fuzz/nested:key-1", "secret.key", "bulk", "status.x"];
const KNOWN_SERVICES = ["fuzz-svc", "config-service", "no-such-svc"];
const KNOWN_FLAGS = ["dark-mode", "off-flag", "theme", "limits", "nope"];

const SPECIAL_SEGMENTS = [
  "",
  ".",
  "..",
  "...",
  "%2F",
  "%00",
  "a%00b",
  "%2e%2e",
  "%2E%2E%2F",
  ".%2e",
  "..%2F..%2Fx",
  "a%2F..%2F..%2Fb",
  "..%5C..%5Cwin.ini",
  "%ZZ",
  "%",
  "%E0%A4%A",
  "%C0%AE%C0%AE",
  "%F0%9F%98%80",
  "😀",
  "a b",
  "a%20b",
  "status",
  "watch",
  "bulk",
  "%27",
  "x'%20OR%20'1'%3D'1",
  "a;DROP%20TABLE%20config_entries;--",
  ";",
  "a;b",
  "a?b=c",
  "a#b",
  "%3F",
  "%23",
  "~",
  "%7E",
  "%FF%FE",
];

function fuzzSegment(r: Rng): string {
  switch (r.int(5)) {
    case 0:
    case 1:
      return r.pick(SPECIAL_SEGMENTS);
    case 2:
      return pct(fuzzString(r));
    case 3:
      return "a".repeat(r.pick([256, 257, 300, 5_000, 20_000]));
    default:
      return r.pick(SPECIAL_SEGMENTS) + pct(r.pick(["a", "é", "..", "/"]));
  }
}

const param = (known: string[]) => (r: Rng) => r.chance(0.55) ? pct(r.pick(known)) : fuzzSegment(r);
const configKey = param(KNOWN_KEYS);
const serviceName = param(KNOWN_SERVICES);
const flagName = param(KNOWN_FLAGS);

const env = (r: Rng) => r.chance(0.85) ? r.pick(ENVS) : fuzzString(r);
const scope = (r: Rng): Pairs => {
  const q: Pairs = [["environment", env(r)]];
  if (r.chance(0.3)) q.push(["service_name", r.pick(["fuzz-svc", "other", fuzzString(r)])]);
  return q;
};
const paging = (r: Rng): Pairs =>
  r.chance(0.5)
    ? []
    : [["limit", r.pick(["1", "50", "0", "-1", "1e309", "-0", "abc", "10001", "3.5", ""])], [
      "offset",
      r.pick(["0", "1", "-1", "1000000001", "0x10", " 1", ""]),
    ]];
const scopeBody = (r: Rng) => ({
  environment: r.pick(ENVS),
  ...(r.chance(0.3) ? { service_name: r.pick(["fuzz-svc", null]) } : {}),
});
const flagBody = (r: Rng) => ({
  flag_name: r.pick(KNOWN_FLAGS),
  ...(r.chance(0.5) ? { user_id: r.pick(["u1", 42]) } : {}),
  ...(r.chance(0.5) ? { context: { region: "us-west", n: 1, b: true, z: null } } : {}),
  ...(r.chance(0.5) ? { default_value: r.pick([false, "x", 3, { a: 1 }]) } : {}),
  ...(r.chance(0.5) ? { environment: r.pick(ENVS) } : {}),
});

const ENDPOINTS: Endpoint[] = [
  { method: "GET", route: "/", path: () => "/" },
  { method: "GET", route: "/api/v1/config/status", path: () => "/api/v1/config/status" },
  { method: "GET", route: "/health", path: () => "/health" },
  { method: "GET", route: "/live", path: () => "/live" },
  { method: "GET", route: "/ready", path: () => "/ready" },
  { method: "GET", route: "/metrics", path: () => "/metrics" },
  { method: "GET", route: "/openapi.json", path: () => "/openapi.json" },
  { method: "GET", route: "/docs", path: () => "/docs" },
  { method: "GET", route: "/redoc", path: () => "/redoc" },
  { method: "GET", route: "/docs/swagger-ui.css", path: () => "/docs/swagger-ui.css" },
  {
    method: "GET",
    route: "/docs/swagger-ui-bundle.js",
    path: () => "/docs/swagger-ui-bundle.js",
  },
  {
    method: "GET",
    route: "/redoc/redoc.standalone.js",
    path: () => "/redoc/redoc.standalone.js",
  },
  // Configuration
  {
    method: "GET",
    route: "/api/v1/config/watch",
    path: () => "/api/v1/config/watch",
    query: (r) => [
      ...scope(r),
      ...(r.chance(0.3)
        ? [["last_event_id", r.pick(["0", "1", "-1", "abc", "1e309", "99999999999999999999"])]]
        : []) as Pairs,
    ],
  },
  {
    method: "POST",
    route: "/api/v1/config/bulk",
    path: () => "/api/v1/config/bulk",
    body: (r) => ({ keys: [r.pick(KNOWN_KEYS), r.pick(KNOWN_KEYS)], ...scopeBody(r) }),
  },
  {
    method: "GET",
    route: "/api/v1/config",
    path: () => "/api/v1/config",
    longPoll: true,
    query: (r) => {
      const q: Pairs = r.chance(0.8) ? scope(r) : [];
      q.push(...paging(r));
      if (r.chance(0.3)) q.push([r.pick(["keys[]", "keys"]), r.pick(KNOWN_KEYS)]);
      if (r.chance(0.2)) q.push(["keys[]", fuzzString(r)]);
      if (r.chance(0.4)) {
        q.push(["index", r.pick(["0", "1", "5", "999999", "-1", "1e309", "-0", "x", ""])]);
        q.push([
          "wait",
          r.pick(["0", "1ms", "20ms", "50ms", "0s", "abc", "-1s", "1h", "1e3s", ""]),
        ]);
      }
      return q;
    },
  },
  {
    method: "POST",
    route: "/api/v1/config",
    path: () => "/api/v1/config",
    body: (r) => ({
      key: r.chance(0.7) ? `fz.${r.int(50)}` : r.pick(KNOWN_KEYS),
      value: r.pick(["v", 1, { a: [1, 2] }, null, true]),
      ...scopeBody(r),
      ...(r.chance(0.3) ? { description: "d" } : {}),
      ...(r.chance(0.2) ? { secret: true } : {}),
    }),
  },
  {
    method: "GET",
    route: "/api/v1/config/{key}",
    path: (r) => `/api/v1/config/${configKey(r)}`,
    query: (r) => [
      ...scope(r),
      ...(r.chance(0.15) ? [["reveal", r.pick(["true", "false", "1", ""])]] as Pairs : []),
    ],
  },
  {
    method: "PUT",
    route: "/api/v1/config/{key}",
    path: (r) => `/api/v1/config/${configKey(r)}`,
    body: (r) => ({
      value: r.pick(["v2", 2, [1], null]),
      ...scopeBody(r),
      ...(r.chance(0.3) ? { description: r.pick(["d", null]) } : {}),
      ...(r.chance(0.2) ? { secret: r.chance(0.5) } : {}),
    }),
  },
  {
    method: "DELETE",
    route: "/api/v1/config/{key}",
    path: (r) => `/api/v1/config/${r.chance(0.5) ? `fz.${r.int(50)}` : configKey(r)}`,
    query: scope,
  },
  {
    method: "GET",
    route: "/api/v1/config/{key}/history",
    path: (r) => `/api/v1/config/${configKey(r)}/history`,
    query: (r) => [...scope(r), ...paging(r)],
  },
  {
    method: "POST",
    route: "/api/v1/config/{key}/rollback",
    path: (r) => `/api/v1/config/${configKey(r)}/rollback`,
    body: (r) => ({ ...scopeBody(r), version: r.pick([1, 2, 3, 999]) }),
  },
  // Service registry
  {
    method: "POST",
    route: "/api/v1/registry/register",
    path: () => "/api/v1/registry/register",
    body: (r) => ({
      service_name: r.pick(["fuzz-svc", "fuzz-other"]),
      service_url: `http://127.0.0.1:${1 + r.int(3)}`,
      ...(r.chance(0.3) ? { health_check_url: "http://127.0.0.1:1/healthz" } : {}),
      metadata: { instance_id: `fz-${r.int(20)}`, weight: r.pick(["1", 5, "x"]), zone: "a" },
      ...(r.chance(0.3) ? { ttl_seconds: r.pick([1, 30, 86_400]) } : {}),
    }),
  },
  {
    method: "POST",
    route: "/api/v1/registry/deregister",
    path: () => "/api/v1/registry/deregister",
    body: (r) => ({
      service_name: r.pick(["fuzz-svc", "fuzz-other"]),
      instance_id: `fz-${r.int(20)}`,
    }),
  },
  {
    method: "POST",
    route: "/api/v1/registry/heartbeat",
    path: () => "/api/v1/registry/heartbeat",
    body: (r) => ({
      service_name: "fuzz-svc",
      instance_id: r.pick(["fz-seed", `fz-${r.int(20)}`]),
    }),
  },
  { method: "GET", route: "/api/v1/registry/services", path: () => "/api/v1/registry/services" },
  {
    method: "GET",
    route: "/api/v1/registry/services/{service_name}",
    path: (r) => `/api/v1/registry/services/${serviceName(r)}`,
  },
  {
    method: "GET",
    route: "/api/v1/registry/services/{service_name}/url",
    path: (r) => `/api/v1/registry/services/${serviceName(r)}/url`,
    query: (r) => [["strategy", r.pick(["round_robin", "random", "weighted", "", "x", "RANDOM"])]],
  },
  {
    method: "GET",
    route: "/api/v1/registry/discover/{service_name}",
    path: (r) => `/api/v1/registry/discover/${serviceName(r)}`,
  },
  {
    method: "POST",
    route: "/api/v1/registry/services/{service_name}/health",
    path: (r) => `/api/v1/registry/services/${serviceName(r)}/health`,
  },
  // Feature flags and OFREP
  {
    method: "POST",
    route: "/api/v1/feature-flags/evaluate",
    path: () => "/api/v1/feature-flags/evaluate",
    body: (r) => ({
      ...flagBody(r),
      ...(r.chance(0.3)
        ? { type: r.pick(["boolean", "string", "number", "integer", "float", "object"]) }
        : {}),
    }),
  },
  {
    method: "POST",
    route: "/api/v1/feature-flags/evaluate/boolean",
    path: () => "/api/v1/feature-flags/evaluate/boolean",
    body: (r) => ({ ...flagBody(r), default_value: r.chance(0.5) }),
  },
  {
    method: "POST",
    route: "/api/v1/feature-flags/evaluate/bulk",
    path: () => "/api/v1/feature-flags/evaluate/bulk",
    body: (r) => {
      const { flag_name: _f, default_value: _d, ...rest } = flagBody(r);
      return {
        ...rest,
        flags: [{ flag_name: r.pick(KNOWN_FLAGS) }, {
          flag_name: r.pick(KNOWN_FLAGS),
          default_value: "x",
          type: "string",
        }],
      };
    },
  },
  {
    method: "GET",
    route: "/api/v1/feature-flags",
    path: () => "/api/v1/feature-flags",
    query: (r) => [["environment", env(r)]],
  },
  {
    method: "POST",
    route: "/api/v1/feature-flags/sync",
    path: () => "/api/v1/feature-flags/sync",
    query: (r) => [["environment", env(r)]],
  },
  {
    method: "GET",
    route: "/api/v1/feature-flags/{name}",
    path: (r) => `/api/v1/feature-flags/${flagName(r)}`,
    query: (r) => [["environment", env(r)]],
  },
  {
    method: "POST",
    route: "/ofrep/v1/evaluate/flags/{key}",
    path: (r) => `/ofrep/v1/evaluate/flags/${flagName(r)}`,
    body: (r) => ({ context: { targetingKey: r.pick(["u1", "u2"]), region: "us-west" } }),
  },
  {
    method: "POST",
    route: "/ofrep/v1/evaluate/flags",
    path: () => "/ofrep/v1/evaluate/flags",
    body: (r) => ({ context: { targetingKey: r.pick(["u1", "u2"]) } }),
  },
];

/** The path the service routes `path` by: URL-normalized as `app.request` does, then
 * spelled as routes/access.ts spells it (escapes of letters, `//`, a trailing `/`). */
const servedPath = (path: string) => requestPath(new URL(`http://localhost${path}`).href);

const routeRe = (route: string) =>
  new RegExp(`^${route.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`);
const OFREP_ROUTES = ENDPOINTS.filter((e) => e.route.startsWith("/ofrep/")).map((e) =>
  routeRe(e.route)
);

/** The methods routes/*.ts answer on `path` (HEAD wherever GET is). */
function allowedMethods(path: string): Set<string> {
  const out = new Set<string>();
  for (const e of ENDPOINTS) if (routeRe(e.route).test(path)) out.add(e.method);
  if (out.has("GET")) out.add("HEAD");
  return out;
}

// --- Queries and headers -----------------------------------------------------------------

const QUERY_GARBAGE = [
  "",
  "&",
  "&&",
  "=",
  "==x",
  "%",
  "%ZZ=1",
  "a=%ZZ",
  "a=%00",
  "?",
  "a=1=2",
  "+",
];

function fuzzQuery(r: Rng, e: Endpoint): string {
  const base = e.query?.(r) ?? [];
  const q: string[] = base.map(([k, v]) => `${pct(k)}=${pct(v)}`);
  const ops = r.chance(0.5) ? 0 : 1 + r.int(3);
  for (let i = 0; i < ops; i++) {
    const op = r.int(6);
    if (op === 0 && base.length > 0) {
      // Repeated parameter (long polls keep `wait` short: only the first one is repeated).
      const [k] = base[r.int(base.length)];
      if (k !== "wait") q.push(`${k}=${pct(r.pick([...ENVS, fuzzString(r)]))}`);
    } else if (op === 1 && base.length > 0) {
      const [k] = base[r.int(base.length)];
      if (!(e.longPoll && k === "wait")) q.push(r.chance(0.5) ? k : `${k}=`);
    } else if (op === 2) q.push(r.pick(QUERY_GARBAGE));
    else if (op === 3) {
      q.push(
        `${pct(fuzzKey(r).slice(0, 300))}=${pct(fuzzString(r))}`,
      );
    } else if (op === 4 && q.length > 0 && !e.longPoll) q.splice(r.int(q.length), 1);
    else {q.push(
        `${r.pick(["limit", "offset", "reveal", "keys[]", "strategy", "environment"])}=${
          pct(fuzzString(r))
        }`,
      );}
  }
  if (
    e.longPoll && q.some((p) => p.startsWith("index=")) && !q.some((p) => p.startsWith("wait="))
  ) {
    q.push("wait=10ms");
  }
  if (r.chance(0.05)) q.push("x=" + "q".repeat(r.pick([2_000, 30_000])));
  const s = q.join("&");
  return s ? `?${s}` : r.chance(0.1) ? "?" : "";
}

/** Header values are byte strings: printable ASCII and Latin-1, no CR/LF/NUL. */
function headerGarbage(r: Rng): string {
  const chars = [..."abcXYZ019 \t\"'*,;=/\\-_.:<>()[]{}?!é\u00ff\u0080"];
  let s = "";
  for (let i = r.int(40); i > 0; i--) s += r.pick(chars);
  return s.trim() === s ? s : s.trim();
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json;charset=latin1",
  "APPLICATION/JSON",
  "application/problem+json",
  "application/vnd.api+json",
  "application/jsonx",
  "text/plain",
  "text/html",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "multipart/form-data",
  "application/octet-stream",
  "",
];

function fuzzHeaders(r: Rng, hasBody: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (hasBody) {
    h["content-type"] = r.chance(0.75) ? "application/json" : r.pick(CONTENT_TYPES);
  } else if (r.chance(0.1)) h["content-type"] = r.pick(CONTENT_TYPES);
  const pick = (name: string, p: number, values: string[]) => {
    if (r.chance(p)) h[name] = r.chance(0.8) ? r.pick(values) : headerGarbage(r);
  };
  pick("if-match", 0.2, [
    "*",
    '"g1"',
    '"s1"',
    '"1"',
    'W/"g1"',
    '"g99999999999"',
    '""',
    "g1",
    " * ",
  ]);
  pick("if-none-match", 0.2, [
    "*",
    '"g1"',
    '"g1", W/"s2"',
    "W/",
    ",,,",
    '"' + "9".repeat(500) + '"',
  ]);
  pick("x-user", 0.2, ["alice", "", " bob", "a".repeat(200), "é", "robert'); DROP TABLE x;--"]);
  pick("x-request-id", 0.3, ["fuzz-1", "a".repeat(129), "a b", "..", "<script>", "é", ""]);
  pick("x-environment", 0.2, [...ENVS, "qa", "", "DEVELOPMENT"]);
  pick("authorization", 0.15, ["Bearer x", "Bearer ", "Basic Zm9vOmJhcg==", "bearer a b", ""]);
  pick("last-event-id", 0.1, ["0", "-1", "abc", "1e309", "99999999999999999999"]);
  pick("accept", 0.1, ["text/event-stream", "*/*", "application/xml"]);
  return h;
}

// --- Sending and checking --------------------------------------------------------------------

type App = Awaited<ReturnType<typeof startService>>["app"];

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  ms: number;
}

const preview = (s: string, n = 200) =>
  JSON.stringify(s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

function describe(s: Sent): string {
  const body = s.body === undefined
    ? ""
    : typeof s.body === "string"
    ? ` body=${preview(s.body)}`
    : ` body=bytes[${[...s.body.slice(0, 60)].join(",")}${s.body.length > 60 ? ",…" : ""}]`;
  return `${s.method} ${preview(s.path, 300)} headers=${JSON.stringify(s.headers)}${body}`;
}

/** Races `p` against {@link HANG_MS}; null when it did not settle in time. */
async function bounded<T>(p: Promise<T>, ms = HANG_MS): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends one request in-process; SSE bodies are read up to their first chunk and cancelled. */
async function send(app: App, s: Sent): Promise<Answer | "hang"> {
  const t0 = performance.now();
  const ctl = new AbortController();
  const req = new Request(`http://localhost${s.path}`, {
    method: s.method,
    headers: s.headers,
    body: s.body as BodyInit | undefined,
    signal: ctl.signal,
  });
  const res = await bounded(Promise.resolve(app.request(req)));
  if (res === null) {
    ctl.abort();
    return "hang";
  }
  let text = "";
  if (res.headers.get("content-type")?.startsWith("text/event-stream") && res.body) {
    const reader = res.body.getReader();
    const first = await bounded(reader.read());
    await reader.cancel();
    if (first === null) return "hang";
    text = first.value ? new TextDecoder().decode(first.value) : "";
  } else {
    const body = await bounded(res.text());
    if (body === null) return "hang";
    text = body;
  }
  return { status: res.status, headers: res.headers, text, ms: performance.now() - t0 };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The one 5xx the contract documents for requests alone: `GET …/services/{name}/url` is 503
 * when the service has no healthy instance (nothing answers health checks here).
 */
function documented503(s: Sent, a: Answer): boolean {
  const path = servedPath(s.path);
  if (a.status !== 503 || !/^\/api\/v1\/registry\/services\/[^/]+\/url$/.test(path)) return false;
  return s.method === "HEAD" || /^No healthy instance of /.test(
    (parseJson(a.text) as { detail?: string } | undefined)?.detail ?? "",
  );
}

/** Every rule an answer must keep; returns what broke, or null. */
function violation(s: Sent, a: Answer): string | null {
  const ct = a.headers.get("content-type") ?? "";
  if (a.status >= 500 && !documented503(s, a)) return `answered ${a.status}`;
  const rid = a.headers.get("x-request-id");
  if (!rid || !REQUEST_ID.test(rid)) return `bad X-Request-Id ${JSON.stringify(rid)}`;
  const given = s.headers["x-request-id"];
  if (given !== undefined && REQUEST_ID.test(given) && rid !== given) {
    return `X-Request-Id ${given} not echoed (${rid})`;
  }
  if (a.status === 304) {
    if (a.text !== "") return "304 with a body";
    if (!a.headers.get("etag")) return "304 without ETag";
    return null;
  }
  if (a.status === 405) {
    const allow = a.headers.get("allow");
    const path = servedPath(s.path);
    const expected = [...allowedMethods(path)].sort().join(", ");
    if (allow !== expected) return `405 with Allow ${allow}, expected ${expected}`;
  }
  if (a.status < 400) {
    if (
      ct.startsWith("application/json") && s.method !== "HEAD" && parseJson(a.text) === undefined
    ) {
      return `${a.status} application/json that does not parse`;
    }
    return null;
  }
  const path = servedPath(s.path);
  const ofrep = s.method === "POST" && OFREP_ROUTES.some((re) => re.test(path)) &&
    (a.status === 400 || a.status === 404);
  if (ofrep) {
    if (!ct.startsWith("application/json")) return `OFREP ${a.status} with content-type ${ct}`;
    const doc = parseJson(a.text) as Record<string, unknown> | undefined;
    if (!doc || typeof doc !== "object") return `OFREP ${a.status} body is not a JSON object`;
    if (typeof doc.errorCode !== "string") return `OFREP ${a.status} without errorCode`;
    if (doc.errorDetails !== undefined && typeof doc.errorDetails !== "string") {
      return "OFREP errorDetails is not a string";
    }
    if (doc.key !== undefined && typeof doc.key !== "string") return "OFREP key is not a string";
    return null;
  }
  if (!ct.startsWith("application/problem+json")) return `${a.status} with content-type ${ct}`;
  if (s.method === "HEAD") return null;
  const p = parseJson(a.text) as Record<string, unknown> | undefined;
  if (!p || typeof p !== "object") return `${a.status} problem body does not parse`;
  if (p.status !== a.status) return `problem status ${p.status} on a ${a.status}`;
  if (typeof p.detail !== "string" || p.detail === "") return "problem without detail";
  if (typeof p.title !== "string" || typeof p.type !== "string") {
    return "problem without title/type";
  }
  if (a.status === 400 && p.errors !== undefined) {
    if (!Array.isArray(p.errors) || p.errors.some((e) => typeof e?.field !== "string")) {
      return "problem errors[] without field names";
    }
  }
  return null;
}

class Findings {
  readonly failures: string[] = [];
  readonly statuses = new Map<number, number>();
  readonly routes = new Set<string>();
  requests = 0;
  slowest = { ms: 0, what: "" };

  async run(app: App, s: Sent, route?: string): Promise<Answer | null> {
    this.requests++;
    if (route) this.routes.add(route);
    const logged = capturedLog.length;
    const a = await send(app, s);
    if (a === "hang") {
      this.fail(s, `no answer within ${HANG_MS} ms`);
      return null;
    }
    this.statuses.set(a.status, (this.statuses.get(a.status) ?? 0) + 1);
    if (a.ms > this.slowest.ms) {
      this.slowest = { ms: a.ms, what: `${s.method} ${s.path.slice(0, 80)}` };
    }
    const v = violation(s, a);
    if (v) {
      // A 500 is logged with its stack: show it with the request.
      const why = capturedLog.slice(logged).filter((l) => l.includes('"level":"error"'))
        .map((l) => `\n    log: ${l.slice(0, 1_500)}`).join("");
      this.fail(s, `${v}: ${preview(a.text, 300)}${why}`);
    }
    return a;
  }

  fail(s: Sent, why: string) {
    if (this.failures.length < 25) {
      this.failures.push(`#${this.requests} ${why}\n    request: ${describe(s)}`);
    } else if (this.failures.length === 25) this.failures.push("… more failures left out");
  }

  assertClean(label: string) {
    assert.equal(
      this.failures.length,
      0,
      `${label} (seed ${SEED_HEX}, replay with FUZZ_SEED=${SEED_HEX}):\n${
        this.failures.join("\n")
      }`,
    );
  }
}

// --- The service under test --------------------------------------------------------------------

const FEATURES = [
  { name: "dark-mode", enabled: true, strategies: [{ name: "default" }] },
  { name: "off-flag", enabled: false, strategies: [{ name: "default" }] },
  {
    name: "limits",
    enabled: true,
    strategies: [{
      name: "default",
      variants: [{ name: "big", weight: 1000, payload: { type: "number", value: "42" } }],
    }],
  },
  {
    name: "theme",
    enabled: true,
    strategies: [{
      name: "flexibleRollout",
      parameters: { rollout: "50", stickiness: "default", groupId: "theme" },
      constraints: [{ contextName: "region", operator: "IN", values: ["us-west"] }],
      variants: [{
        name: "cfg",
        weight: 1000,
        payload: { type: "json", value: '{"color":"red"}' },
      }],
    }],
  },
];

/** Embedded defaults; health probes bounded so manual checks of fuzzed instances stay short. */
async function fuzzService(over: Record<string, string> = {}) {
  const flags = tempFile({ prefix: "cs-fuzz-flags-", suffix: ".json" });
  Deno.writeTextFileSync(flags, JSON.stringify({ version: 2, features: FEATURES, segments: [] }));
  return await startService(embeddedSettings({
    FLAGS_FILE: flags,
    SERVICE_HEALTH_CHECK_ENABLED: "false",
    HEALTH_CHECK_TIMEOUT: "0.5",
    HEALTH_CHECK_MAX_RETRIES: "0",
    SERVICE_ADVERTISE_URL: "http://127.0.0.1:1",
    ...over,
  }));
}

/** Entries, an instance and flag definitions for the fuzzer to hit. */
async function seed(app: App, auth: Record<string, string> = {}) {
  for (const key of KNOWN_KEYS) {
    for (const environment of ENVS) {
      const created = await call(app, "POST", "/api/v1/config", {
        key,
        value: { n: 1, key },
        environment,
        secret: key === "secret.key",
      }, auth);
      assert.equal(created.status, 201, created.text);
      await call(app, "PUT", `/api/v1/config/${pct(key)}`, {
        value: "second",
        environment,
      }, auth);
    }
    await call(app, "POST", "/api/v1/config", {
      key,
      value: "svc",
      environment: "development",
      service_name: "fuzz-svc",
    }, auth);
  }
  const reg = await call(app, "POST", "/api/v1/registry/register", {
    service_name: "fuzz-svc",
    service_url: "http://127.0.0.1:1",
    metadata: { instance_id: "fz-seed" },
    ttl_seconds: 3600,
  }, auth);
  assert.equal(reg.status, 201, reg.text);
  await waitFor(
    async () =>
      (await call(app, "POST", "/api/v1/feature-flags/evaluate/boolean", {
        flag_name: "dark-mode",
      }, auth)).body?.reason === "STATIC",
    5_000,
    "flag definitions",
  );
}

// --- 1. No 5xx, no hang, every 4xx a problem -----------------------------------------------

Deno.test(`fuzz (seed ${SEED_HEX}): every endpoint and method, no 5xx, every 4xx a problem`, async () => {
  await using svc = await fuzzService();
  await seed(svc.app);
  const r = new Rng(SEED);
  const f = new Findings();
  const t0 = performance.now();

  // Every method on every route's path: 405 with Allow where not allowed.
  const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
  for (const e of ENDPOINTS) {
    const path = e.route.replace(
      /\{[^}]+\}/g,
      (p) =>
        p === "{key}"
          ? (e.route.startsWith("/ofrep") ? "dark-mode" : "fuzz.key")
          : p === "{name}"
          ? "dark-mode"
          : "fuzz-svc",
    );
    const allowed = allowedMethods(path);
    for (const method of METHODS) {
      const withBody = !["GET", "HEAD"].includes(method);
      const s: Sent = {
        method,
        path: `${path}?environment=development`,
        headers: withBody ? { "content-type": "application/json" } : {},
        body: withBody ? "{}" : undefined,
      };
      const a = await f.run(svc.app, s, `${method} ${e.route}`);
      if (!a) continue;
      if (!allowed.has(method) && a.status !== 405) {
        f.fail(s, `expected 405 (allowed: ${[...allowed].join(", ")}), got ${a.status}`);
      }
      if (allowed.has(method) && a.status === 405) f.fail(s, "405 on an allowed method");
    }
  }

  // Random requests against every endpoint.
  // Round robin over the endpoints, those with a body or a query three times as often.
  const weighted = ENDPOINTS.flatMap((e) =>
    e.body || e.query || e.route.includes("{") ? [e, e, e] : [e]
  );
  for (let i = 0; i < RANDOM_REQUESTS; i++) {
    const e = weighted[i % weighted.length];
    const roll = r.int(100);
    let path: string;
    if (roll < 85) path = e.path(r);
    else if (roll < 95) {
      // Random segments under a known prefix, or a mangled route.
      const prefix = r.pick([
        "/api/v1/config",
        "/api/v1/registry",
        "/api/v1/feature-flags",
        "/ofrep/v1",
        "/api/v1",
        "",
        "/docs",
      ]);
      path = prefix + Array.from({ length: 1 + r.int(4) }, () => `/${fuzzSegment(r)}`).join("");
    } else {
      path = r.pick([
        "//",
        "/api//v1/config",
        "/api/v1/config/",
        "/API/V1/CONFIG",
        "/api/v1/config/a/b/c",
        "/./live",
        "/live/..",
        "/%2e%2e/live",
        "/live%00",
        "/" + "x/".repeat(3_000),
      ]);
    }
    const method = r.chance(0.9)
      ? e.method
      : r.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);
    const hasBody = !["GET", "HEAD"].includes(method) && (e.body !== undefined || r.chance(0.3));
    const body = hasBody ? fuzzBody(r, () => e.body?.(r) ?? {}) : undefined;
    await f.run(svc.app, {
      method,
      path: path + fuzzQuery(r, e),
      headers: fuzzHeaders(r, hasBody),
      body,
    }, `${e.method} ${e.route}`);
  }

  // Every watch body was cancelled: no watcher may be left behind.
  await waitFor(() => svc.hub.watchers === 0, 2_000, "watchers to go").catch(() => {
    f.failures.push(`${svc.hub.watchers} watcher(s) left after every watch body was cancelled`);
  });
  // The store still serves after all this: a fresh entry round-trips.
  const fresh = { key: "after.fuzz", value: { ok: [1, "two"] }, environment: "staging" };
  assert.equal((await call(svc.app, "POST", "/api/v1/config", fresh)).status, 201);
  const back = await call(svc.app, "GET", "/api/v1/config/after.fuzz?environment=staging");
  assert.equal(back.status, 200, back.text);
  assert.deepEqual(back.body.value, fresh.value);
  const ms = Math.round(performance.now() - t0);
  console.log(
    `fuzz seed ${SEED_HEX}: ${f.requests} requests, ${f.routes.size} method+route pairs, ` +
      `${ENDPOINTS.length} endpoints, ${ms} ms; statuses ${
        JSON.stringify(Object.fromEntries([...f.statuses].sort(([a], [b]) => a - b)))
      }; slowest ${Math.round(f.slowest.ms)} ms (${f.slowest.what})`,
  );
  f.assertClean("fuzz found answers that break the HTTP contract");
  assert.ok(
    ENDPOINTS.every((e) => f.routes.has(`${e.method} ${e.route}`)),
    "every endpoint was hit",
  );
});

// --- 2. A 400 names the failing field ------------------------------------------------------

Deno.test(`fuzz (seed ${SEED_HEX}): a 400 names each failing field in errors[].field`, async () => {
  await using svc = await fuzzService();
  await seed(svc.app);
  const deep = (n: number) => JSON.parse("[".repeat(n) + "]".repeat(n));
  const entry = { key: "ok.key", value: 1, environment: "development" };
  const reg = { service_name: "fz-field", service_url: "http://127.0.0.1:1" };
  const cases: [string, string, unknown, Record<string, string>, number, string][] = [
    ["POST", "/api/v1/config", { ...entry, key: 5 }, {}, 400, "key"],
    ["POST", "/api/v1/config", { ...entry, key: "a b" }, {}, 400, "key"],
    ["POST", "/api/v1/config", { ...entry, key: "watch" }, {}, 400, "key"],
    ["POST", "/api/v1/config", { key: "ok.key", environment: "development" }, {}, 400, "value"],
    ["POST", "/api/v1/config", { ...entry, environment: "qa" }, {}, 400, "environment"],
    ["POST", "/api/v1/config", { ...entry, secret: "yes" }, {}, 400, "secret"],
    ["POST", "/api/v1/config", { ...entry, service_name: "a b" }, {}, 400, "service_name"],
    ["POST", "/api/v1/config", { ...entry, description: "d".repeat(1025) }, {}, 400, "description"],
    ["POST", "/api/v1/config", { ...entry, value: deep(200) }, {}, 400, "value"],
    ["POST", "/api/v1/config", { ...entry, value: "v".repeat(300_000) }, {}, 413, "value"],
    ["POST", "/api/v1/config", entry, { "x-user": "tab\there" }, 400, "X-User"],
    [
      "PUT",
      "/api/v1/config/fuzz.key",
      { value: 1, environment: "development", description: 5 },
      {},
      400,
      "description",
    ],
    [
      "PUT",
      "/api/v1/config/fuzz.key",
      { value: 1, environment: "development" },
      { "if-match": "g1" },
      400,
      "If-Match",
    ],
    ["PUT", "/api/v1/config/a%20b", { value: 1, environment: "development" }, {}, 400, "key"],
    [
      "POST",
      "/api/v1/config/fuzz.key/rollback",
      { environment: "development", version: "1" },
      {},
      400,
      "version",
    ],
    [
      "POST",
      "/api/v1/config/fuzz.key/rollback",
      { environment: "development", version: 0 },
      {},
      400,
      "version",
    ],
    [
      "POST",
      "/api/v1/config/bulk",
      { keys: "fuzz.key", environment: "development" },
      {},
      400,
      "keys",
    ],
    [
      "POST",
      "/api/v1/config/bulk",
      { keys: ["a b"], environment: "development" },
      {},
      400,
      "keys.0",
    ],
    ["GET", "/api/v1/config?environment=development&limit=0", undefined, {}, 400, "limit"],
    ["GET", "/api/v1/config?environment=development&offset=-1", undefined, {}, 400, "offset"],
    ["GET", "/api/v1/config?index=1&wait=10ms", undefined, {}, 400, "environment"],
    ["GET", "/api/v1/config?environment=development&index=1&wait=1h", undefined, {}, 400, "wait"],
    ["GET", "/api/v1/config?environment=development&keys[]=a%20b", undefined, {}, 400, "keys"],
    ["GET", "/api/v1/config/fuzz.key?environment=qa", undefined, {}, 400, "environment"],
    ["GET", "/api/v1/config/a%20b?environment=development", undefined, {}, 400, "key"],
    [
      "GET",
      "/api/v1/config/fuzz.key/history?environment=development&limit=1001",
      undefined,
      {},
      400,
      "limit",
    ],
    ["DELETE", "/api/v1/config/fuzz.key?environment=qa", undefined, {}, 400, "environment"],
    [
      "GET",
      "/api/v1/config/watch?environment=development",
      undefined,
      { "last-event-id": "abc" },
      400,
      "Last-Event-ID",
    ],
    ["POST", "/api/v1/registry/register", { ...reg, service_url: 5 }, {}, 400, "service_url"],
    [
      "POST",
      "/api/v1/registry/register",
      { ...reg, service_url: "ftp://x" },
      {},
      400,
      "service_url",
    ],
    [
      "POST",
      "/api/v1/registry/register",
      { ...reg, service_url: "http://169.254.169.254/" },
      {},
      400,
      "service_url",
    ],
    [
      "POST",
      "/api/v1/registry/register",
      { ...reg, health_check_url: "http://[fe80::1]/" },
      {},
      400,
      "health_check_url",
    ],
    ["POST", "/api/v1/registry/register", { ...reg, service_name: "a b" }, {}, 400, "service_name"],
    ["POST", "/api/v1/registry/register", { ...reg, ttl_seconds: 0 }, {}, 400, "ttl_seconds"],
    [
      "POST",
      "/api/v1/registry/register",
      { ...reg, metadata: { instance_id: ".." } },
      {},
      400,
      "metadata.instance_id",
    ],
    ["POST", "/api/v1/registry/deregister", { service_name: "fuzz-svc" }, {}, 400, "instance_id"],
    [
      "POST",
      "/api/v1/registry/heartbeat",
      { service_name: 1, instance_id: "x" },
      {},
      400,
      "service_name",
    ],
    ["GET", "/api/v1/registry/services/fuzz-svc/url?strategy=x", undefined, {}, 400, "strategy"],
    ["GET", "/api/v1/registry/discover/a%20b", undefined, {}, 400, "service_name"],
    ["POST", "/api/v1/feature-flags/evaluate", { flag_name: 5 }, {}, 400, "flag_name"],
    [
      "POST",
      "/api/v1/feature-flags/evaluate",
      { flag_name: "x", type: "integer", default_value: 1.5 },
      {},
      400,
      "default_value",
    ],
    [
      "POST",
      "/api/v1/feature-flags/evaluate",
      { flag_name: "x", environment: "qa" },
      {},
      400,
      "environment",
    ],
    [
      "POST",
      "/api/v1/feature-flags/evaluate",
      { flag_name: "x", context: { a: { b: 1 } } },
      {},
      400,
      "context.a",
    ],
    [
      "POST",
      "/api/v1/feature-flags/evaluate",
      { flag_name: "x", default_value: deep(200) },
      {},
      400,
      "body",
    ],
    [
      "POST",
      "/api/v1/feature-flags/evaluate/boolean",
      { flag_name: "x", default_value: "no" },
      {},
      400,
      "default_value",
    ],
    ["POST", "/api/v1/feature-flags/evaluate/bulk", { flags: [] }, {}, 400, "flags"],
    [
      "POST",
      "/api/v1/feature-flags/evaluate/bulk",
      { flags: [{ flag_name: "" }] },
      {},
      400,
      "flags.0.flag_name",
    ],
    ["GET", "/api/v1/feature-flags?environment=qa", undefined, {}, 400, "environment"],
    ["POST", "/api/v1/feature-flags/sync", undefined, {}, 400, "environment"],
  ];
  const wrong: string[] = [];
  for (const [method, path, body, headers, status, field] of cases) {
    const r = await call(svc.app, method, path, body, headers);
    const fields = (r.body?.errors ?? []).map((e: { field: string }) => e.field);
    if (
      r.status !== status ||
      !r.headers.get("content-type")?.startsWith("application/problem+json") ||
      r.body?.status !== status || !fields.includes(field)
    ) {
      wrong.push(
        `${method} ${path} ${
          JSON.stringify(body)?.slice(0, 80)
        }: expected ${status} naming ${field}, got ${r.status} ${r.text.slice(0, 300)}`,
      );
    }
  }
  assert.deepEqual(wrong, []);
  // OFREP names the problem in its own format.
  const ofrep = await call(svc.app, "POST", "/ofrep/v1/evaluate/flags/dark-mode", {}, {
    "x-environment": "qa",
  });
  assert.equal(ofrep.status, 400);
  assert.match(ofrep.headers.get("content-type")!, /^application\/json/);
  assert.equal(ofrep.body.key, "dark-mode");
  assert.equal(ofrep.body.errorCode, "INVALID_CONTEXT");
  assert.match(ofrep.body.errorDetails, /X-Environment/);
  const ctx = await call(svc.app, "POST", "/ofrep/v1/evaluate/flags", { context: [1] });
  assert.deepEqual([ctx.status, ctx.body.errorCode, "key" in ctx.body], [
    400,
    "INVALID_CONTEXT",
    false,
  ]);
  assert.match(ctx.body.errorDetails, /context/);
});

// --- 3. SQL-looking input is refused or kept literally --------------------------------------

Deno.test(`fuzz (seed ${SEED_HEX}): SQL-looking keys are refused or stored literally`, async () => {
  await using svc = await fuzzService();
  const app = svc.app;
  const SQL = [
    "x' OR '1'='1",
    "a;DROP TABLE config_entries;--",
    "%27",
    "'",
    "1' UNION SELECT key, value FROM config_entries--",
    'x"; DROP TABLE config_history; --',
    "a'--",
    "a/**/OR/**/1=1",
    "a%27%20OR%201%3D1",
  ];
  const before = await call(app, "POST", "/api/v1/config", {
    key: "plain.key",
    value: "plain",
    environment: "development",
  });
  assert.equal(before.status, 201);
  const stored: string[] = ["plain.key"];
  for (const key of SQL) {
    const value = `${key} ; DELETE FROM config_entries WHERE '1'='1`;
    const r = await call(app, "POST", "/api/v1/config", {
      key,
      value,
      environment: "development",
      description: `'); DROP TABLE config_entries;-- ${key}`,
    });
    if (r.status === 201) {
      // Accepted: it must be an ordinary key, read back byte for byte.
      stored.push(key);
      const got = await call(app, "GET", `/api/v1/config/${pct(key)}?environment=development`);
      assert.equal(got.status, 200, `${key}: ${got.text}`);
      assert.equal(got.body.key, key);
      assert.equal(got.body.value, value);
    } else {
      // Refused: a 400 problem naming the key (KEY_PATTERN allows [A-Za-z0-9._:/-] only).
      assert.equal(r.status, 400, `${key}: ${r.text}`);
      assert.match(r.headers.get("content-type")!, /^application\/problem\+json/);
      assert.ok(r.body.errors.some((e: { field: string }) => e.field === "key"), r.text);
    }
    // Addressed in a path or a query, it never reaches another entry.
    for (
      const path of [
        `/api/v1/config/${pct(key)}?environment=development`,
        `/api/v1/config/${pct(key)}/history?environment=development`,
        `/api/v1/config?environment=development&keys[]=${pct(key)}`,
        `/api/v1/config?environment=development&service_name=${pct(key)}`,
        `/api/v1/config?environment=${pct(key)}`,
        `/api/v1/feature-flags/${pct(key)}?environment=development`,
        `/api/v1/registry/services/${pct(key)}`,
      ]
    ) {
      const g = await call(app, "GET", path);
      assert.ok(g.status < 500, `${path}: ${g.status}`);
      if (g.status === 200 && path.includes("/api/v1/config/")) {
        const items = Array.isArray(g.body) ? g.body : [g.body];
        for (const it of items) assert.equal(it.key, key, `${path} answered ${g.text}`);
      } else if (g.status === 200) {
        assert.ok(Array.isArray(g.body) && g.body.every((it: { key: string }) => it.key === key));
      } else {
        assert.match(g.headers.get("content-type")!, /^application\/problem\+json/, path);
      }
    }
  }
  // SQL in values, descriptions and registry metadata is data: stored and read back as is.
  const sqlValue = { q: "x' OR '1'='1", drop: "'; DROP TABLE config_entries;--" };
  assert.equal(
    (await call(app, "POST", "/api/v1/config", {
      key: "sql.value",
      value: sqlValue,
      environment: "development",
      description: "'); DELETE FROM config_history;--",
    })).status,
    201,
  );
  stored.push("sql.value");
  const v = await call(app, "GET", "/api/v1/config/sql.value?environment=development");
  assert.deepEqual(v.body.value, sqlValue);
  assert.equal(v.body.description, "'); DELETE FROM config_history;--");
  const reg = await call(app, "POST", "/api/v1/registry/register", {
    service_name: "sql-svc",
    service_url: "http://127.0.0.1:1/a'b",
    metadata: { instance_id: "sql-1", q: "x' OR '1'='1" },
  });
  assert.equal(reg.status, 201, reg.text);
  const svcDoc = await call(app, "GET", "/api/v1/registry/services/sql-svc");
  assert.equal(svcDoc.body.instances[0].metadata.q, "x' OR '1'='1");
  assert.equal(
    (await call(app, "POST", "/api/v1/registry/register", {
      service_name: "x' OR '1'='1",
      service_url: "http://127.0.0.1:1",
    })).status,
    400,
  );

  // The store still works and holds exactly what was written.
  const list = await call(app, "GET", "/api/v1/config?environment=development");
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.map((e: { key: string }) => e.key).sort(), [...stored].sort());
  const after = await call(app, "POST", "/api/v1/config", {
    key: "after.sql",
    value: [1, "two"],
    environment: "development",
  });
  assert.equal(after.status, 201);
  const back = await call(app, "GET", "/api/v1/config/after.sql?environment=development");
  assert.deepEqual([back.status, back.body.value], [200, [1, "two"]]);
  const hist = await call(app, "GET", "/api/v1/config/plain.key/history?environment=development");
  assert.deepEqual(hist.body.map((h: { value: string }) => h.value), ["plain"]);
});

// --- 4. Traversal-looking keys never resolve to another key ----------------------------------

/*
 * What the service does (asserted below):
 * - Keys are opaque identifiers in the store (a column, never a file path), of
 *   `[A-Za-z0-9._:/-]{1,256}`, so `../etc/passwd`, `a/../../b` and `./x` are *valid* keys,
 *   stored and read back literally (clients send the `/` as `%2F`); they never name
 *   `etc/passwd`, `b` or `x`.
 * - `..` (any key of dots only) is refused, since a URL could not address it; anything with
 *   `%` (`%2e%2e`, `..%2F..%2Fx`) or `\` is refused by the pattern.
 * - An unencoded `../` in a request path is resolved by URL parsing before routing (the
 *   WHATWG rules every HTTP client and Deno.serve apply, `%2e%2e` included), so it can only
 *   change which route answers (a 404 problem here), never which key a route reads.
 * - Percent-decoding happens once: `%252F` reaches the route as `%2F`, which is refused.
 */
Deno.test(`fuzz (seed ${SEED_HEX}): traversal-looking keys are refused or stay literal`, async () => {
  await using svc = await fuzzService();
  const app = svc.app;
  const env = "environment=development";
  for (const [key, value] of [["etc/passwd", "decoy"], ["b", "decoy-b"], ["x", "decoy-x"]]) {
    assert.equal(
      (await call(app, "POST", "/api/v1/config", { key, value, environment: "development" }))
        .status,
      201,
    );
  }
  const TRAVERSAL = [
    "../etc/passwd",
    "..%2F..%2Fx",
    "a/../../b",
    "%2e%2e",
    "..",
    ".",
    "./x",
    "a/./b",
    "..\\x",
    "../../../../../../../../etc/passwd",
    "x/..",
  ];
  const literal: string[] = [];
  for (const key of TRAVERSAL) {
    const value = `value of ${key}`;
    const r = await call(app, "POST", "/api/v1/config", { key, value, environment: "development" });
    if (r.status === 201) {
      literal.push(key);
      assert.equal(r.body.key, key);
    } else {
      assert.equal(r.status, 400, `${key}: ${r.text}`);
      assert.ok(r.body.errors.some((e: { field: string }) => e.field === "key"), r.text);
    }
  }
  // What the pattern accepts and refuses, as documented above.
  assert.deepEqual(literal, [
    "../etc/passwd",
    "a/../../b",
    "./x",
    "a/./b",
    "../../../../../../../../etc/passwd",
    "x/..",
  ]);
  for (const key of literal) {
    const got = await call(app, "GET", `/api/v1/config/${pct(key)}?${env}`);
    assert.equal(got.status, 200, `${key}: ${got.text}`);
    assert.deepEqual([got.body.key, got.body.value], [key, `value of ${key}`]);
    const hist = await call(app, "GET", `/api/v1/config/${pct(key)}/history?${env}`);
    assert.deepEqual(hist.body.map((h: { key: string }) => h.key), [key]);
  }
  // Every spelling of a traversal in the path: a problem, or exactly the key it spells.
  const spellings = [
    "../etc/passwd",
    "..%2Fetc%2Fpasswd",
    "%2e%2e%2Fetc%2Fpasswd",
    "%2e%2e/etc/passwd",
    "..%252Fetc%252Fpasswd",
    "a/../../b",
    "a%2F..%2F..%2Fb",
    "%2e%2e",
    ".%2e",
    "..%2F..%2Fx",
    "..%5Cx",
    "x%2F..",
    "x/..",
    "%2e/x",
  ];
  for (const s of spellings) {
    for (const suffix of ["", "/history"]) {
      const path = `/api/v1/config/${s}${suffix}?${env}`;
      const g = await call(app, "GET", path);
      assert.ok(g.status < 500, `${path}: ${g.status}`);
      if (g.status === 200) {
        // Only the key the (URL-normalized) segment decodes to: `%2e/x` is the URL `./x`,
        // which is `x` for every client; `..%2Fetc%2Fpasswd` is `../etc/passwd`. A path that
        // normalizes to `/api/v1/config/` is the list route (a trailing `/` is the same route).
        const pathname = new URL(`http://h${path}`).pathname;
        if (pathname === "/api/v1/config/") {
          assert.ok(Array.isArray(g.body), `${path} answered ${g.text}`);
          continue;
        }
        const expected = decodeURIComponent(pathname.split("/")[4]);
        const keys = (Array.isArray(g.body) ? g.body : [g.body]).map((e: { key: string }) => e.key);
        assert.ok(keys.every((k: string) => k === expected), `${path} answered ${g.text}`);
      } else {
        assert.match(g.headers.get("content-type")!, /^application\/problem\+json/, path);
      }
    }
  }
  const raw = await call(app, "GET", `/api/v1/config/../etc/passwd?${env}`);
  assert.equal(raw.status, 404, "resolved by URL parsing to /api/v1/etc/passwd: no route");
  assert.equal(raw.body.instance, "/api/v1/etc/passwd");
  const encoded = await call(app, "GET", `/api/v1/config/..%2Fetc%2Fpasswd?${env}`);
  assert.deepEqual([encoded.body.key, encoded.body.value], [
    "../etc/passwd",
    "value of ../etc/passwd",
  ]);
  // Deleting the traversal-looking key leaves the one it "points" at alone.
  const del = await call(app, "DELETE", `/api/v1/config/${pct("../etc/passwd")}?${env}`);
  assert.deepEqual([del.status, del.body.key], [200, "../etc/passwd"]);
  const decoy = await call(app, "GET", `/api/v1/config/etc%2Fpasswd?${env}`);
  assert.deepEqual([decoy.status, decoy.body.value], [200, "decoy"]);
  // Bulk resolves keys literally too.
  const bulk = await call(app, "POST", "/api/v1/config/bulk", {
    keys: ["a/../../b", "../etc/passwd", "etc/passwd"],
    environment: "development",
  });
  assert.deepEqual(bulk.body, { "a/../../b": "value of a/../../b", "etc/passwd": "decoy" });
  // Flags and OFREP: names are looked up, never opened as files; registry names refuse `/`, `..`.
  const flag = await call(app, "GET", `/api/v1/feature-flags/..%2F..%2Fetc%2Fpasswd?${env}`);
  assert.equal(flag.status, 404);
  const of = await call(app, "POST", "/ofrep/v1/evaluate/flags/..%2F..%2Fetc%2Fpasswd", {});
  assert.deepEqual([of.status, of.body.key, of.body.errorCode], [
    404,
    "../../etc/passwd",
    "FLAG_NOT_FOUND",
  ]);
  for (const name of ["..", "../x", "a/b"]) {
    const reg = await call(app, "POST", "/api/v1/registry/register", {
      service_name: name,
      service_url: "http://127.0.0.1:1",
    });
    assert.equal(reg.status, 400, `${name}: ${reg.text}`);
  }
  assert.equal((await call(app, "GET", "/api/v1/registry/services/..%2Fx")).status, 400);
});

// --- 5. Secret values and API tokens never reach the log -----------------------------------

const SECRET = "fzS3cretValue-7c1e9a5d20";
const SECRET2 = "fzS3cretRotated-41b0d2e8c6";
const TOKENS = {
  reader: "fzTokReader-6a1f0c93d2e4",
  writer: "fzTokWriter-b83e5d10a7f9",
  vault: "fzTokVault-2c9d4e7f18ab",
  admin: "fzTokAdmin-9e0b7a35c4d1",
};
/** Tokens no one holds, one of them a valid token with a character more. */
const BOGUS = ["fzTokBogus-00deadbeef11", `${TOKENS.vault}x`, TOKENS.admin.slice(0, -1)];
const API_TOKENS = [
  `reader:${TOKENS.reader}:config:read,registry:read,flags:read`,
  `writer:${TOKENS.writer}:config:read,config:write`,
  `vault:${TOKENS.vault}:config:read,config:write,secrets:read`,
  `ops:${TOKENS.admin}:admin`,
].join(";");
/** Strings that must never be logged. */
const NEVER_LOGGED = [SECRET, SECRET2, ...Object.values(TOKENS), ...BOGUS];

type Fetch = (path: string, init?: RequestInit) => Promise<Response>;

/**
 * Writes and reads secret entries every way the API allows, with valid and invalid tokens;
 * asserts the answers mask the secret. Request ids start with `fz-secret-`.
 */
async function exerciseSecrets(fetcher: Fetch): Promise<number> {
  let n = 0;
  const req = async (
    method: string,
    path: string,
    token?: string | null,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const h: Record<string, string> = { "x-request-id": `fz-secret-${++n}`, ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h["content-type"] = "application/json";
    const res = await fetcher(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: parseJson(text) as Record<string, unknown> };
  };
  const env = "environment=development";
  const entry = {
    key: "fz.db.password",
    value: SECRET,
    environment: "development",
    secret: true,
    description: "database password",
  };
  // Watch (masked events) while writing.
  const watch = await fetcher(`/api/v1/config/watch?${env}`, {
    headers: { authorization: `Bearer ${TOKENS.reader}`, "x-request-id": "fz-secret-watch" },
  });
  assert.equal(watch.status, 200);
  const created = await req("POST", "/api/v1/config", TOKENS.writer, entry);
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.value, "******");
  const nested = await req("POST", "/api/v1/config", TOKENS.writer, {
    ...entry,
    key: "fz.db.dsn",
    value: { user: "app", password: SECRET, url: `postgres://app:${SECRET}@db/x` },
    service_name: "fz-app",
  });
  assert.equal(nested.status, 201, nested.text);
  const updated = await req("PUT", "/api/v1/config/fz.db.password", TOKENS.vault, {
    value: SECRET2,
    environment: "development",
  });
  assert.equal(updated.status, 200, updated.text);
  assert.equal(updated.body.value, "******");

  const masked = await req("GET", `/api/v1/config/fz.db.password?${env}`, TOKENS.reader);
  assert.deepEqual([masked.status, masked.body.value], [200, "******"]);
  const shown = await req("GET", `/api/v1/config/fz.db.password?${env}&reveal=true`, TOKENS.vault);
  assert.deepEqual([shown.status, shown.body.value], [200, SECRET2]);
  const dsn = await req(
    "GET",
    `/api/v1/config/fz.db.dsn?${env}&service_name=fz-app&reveal=true`,
    TOKENS.vault,
  );
  assert.equal((dsn.body.value as { password: string }).password, SECRET);
  assert.equal(
    (await req("GET", `/api/v1/config/fz.db.password?${env}&reveal=true`, TOKENS.reader)).status,
    403,
  );
  for (
    const [method, path, token, body] of [
      ["GET", `/api/v1/config?${env}`, TOKENS.reader, undefined],
      ["GET", `/api/v1/config?${env}&service_name=fz-app`, TOKENS.reader, undefined],
      ["GET", `/api/v1/config/fz.db.password/history?${env}`, TOKENS.reader, undefined],
      ["POST", "/api/v1/config/bulk", TOKENS.reader, {
        keys: ["fz.db.password", "fz.db.dsn"],
        environment: "development",
        service_name: "fz-app",
      }],
      ["POST", "/api/v1/config/fz.db.password/rollback", TOKENS.writer, {
        environment: "development",
        version: 1,
      }],
    ] as const
  ) {
    const r = await req(method, path, token, body);
    assert.equal(r.status, 200, `${method} ${path}: ${r.text}`);
    assert.ok(!r.text.includes(SECRET) && !r.text.includes(SECRET2), `${path}: ${r.text}`);
    assert.match(r.text, /\*{6}/);
  }
  // Failures around secrets: conflict, stale If-Match, invalid input, too large.
  assert.equal((await req("POST", "/api/v1/config", TOKENS.writer, entry)).status, 409);
  assert.equal(
    (await req("PUT", "/api/v1/config/fz.db.password", TOKENS.writer, {
      value: SECRET,
      environment: "development",
    }, { "if-match": '"g1"' })).status,
    412,
  );
  assert.equal(
    (await req("POST", "/api/v1/config", TOKENS.writer, { ...entry, environment: "qa" })).status,
    400,
  );
  assert.equal(
    (await req("POST", "/api/v1/config", TOKENS.writer, {
      ...entry,
      key: "fz.big",
      value: SECRET.repeat(20_000),
    })).status,
    413,
  );
  assert.equal(
    (await req("POST", "/api/v1/config", TOKENS.writer, {
      ...entry,
      key: "fz.deep",
      value: JSON.parse(`${"[".repeat(130)}${JSON.stringify(SECRET)}${"]".repeat(130)}`),
    })).status,
    400,
  );
  // Tokens: valid ones on every resource, and invalid ones every way they can be sent.
  assert.equal((await req("GET", "/api/v1/registry/services", TOKENS.reader)).status, 200);
  assert.equal((await req("GET", "/metrics", TOKENS.admin)).status, 200);
  assert.equal(
    (await req("POST", "/api/v1/feature-flags/evaluate", TOKENS.reader, { flag_name: "x" }))
      .status,
    200,
  );
  assert.equal((await req("POST", "/ofrep/v1/evaluate/flags", TOKENS.reader, {})).status, 200);
  assert.equal((await req("POST", "/api/v1/config", TOKENS.reader, entry)).status, 403);
  for (const bad of [...BOGUS, ...Object.values(TOKENS)]) {
    const forms: Record<string, string>[] = [
      { authorization: `Token ${bad}` },
      { authorization: `Bearer  ${bad} extra` },
    ];
    if (BOGUS.includes(bad)) {
      forms.push(
        { authorization: `Bearer ${bad}` },
        { authorization: bad },
        { authorization: `Basic ${btoa(`user:${bad}`)}` },
      );
    }
    for (const headers of forms) {
      const r = await req("GET", `/api/v1/config?${env}`, null, undefined, headers);
      assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.text}`);
      assert.ok(!r.text.includes(bad), r.text);
    }
    if (!BOGUS.includes(bad)) {
      // A real token sent raw, as Unleash SDKs send it, authenticates like `Bearer` (issue
      // 14); it still never comes back in an answer.
      const raw = await req("GET", `/api/v1/config?${env}`, null, undefined, {
        authorization: bad,
      });
      assert.equal(raw.status, 200, `raw ${bad}: ${raw.text}`);
      assert.ok(!raw.text.includes(bad), raw.text);
    }
    // In the query string (not a supported place): refused, and the query is not logged.
    const q = await req("GET", `/api/v1/config?${env}&access_token=${bad}`, null);
    assert.equal(q.status, 401);
  }
  // HTTP Basic with a valid token as password is that token (Spring Cloud Config clients send
  // spring.cloud.config.password so); with a token as user name and no password it is not.
  const basic = (pair: string) => ({ authorization: `Basic ${btoa(pair)}` });
  assert.equal(
    (await req("GET", `/api/v1/config?${env}`, null, undefined, basic(`u:${TOKENS.reader}`)))
      .status,
    200,
  );
  assert.equal(
    (await req("GET", `/api/v1/config?${env}`, null, undefined, basic(`${TOKENS.reader}:`)))
      .status,
    401,
  );
  // The watcher saw the writes, masked.
  const reader = watch.body!.getReader();
  let seen = "";
  const dec = new TextDecoder();
  const until = Date.now() + 3_000;
  while (!seen.includes("event: rolled_back") && Date.now() < until) {
    const chunk = await bounded(reader.read(), 3_000);
    if (!chunk || chunk.done) break;
    seen += dec.decode(chunk.value);
  }
  await reader.cancel();
  assert.match(seen, /event: updated/);
  assert.ok(!seen.includes(SECRET) && !seen.includes(SECRET2), seen);
  return n;
}

/** Log lines naming a secret or a token, shortened. */
function leaks(lines: string[]): string[] {
  return lines.filter((l) => NEVER_LOGGED.some((s) => l.includes(s))).map((l) => l.slice(0, 300));
}

Deno.test(`fuzz (seed ${SEED_HEX}): secret values and tokens never reach the log (in-process)`, async () => {
  const lowest = (["debug", "info", "warn", "error"] as const).find((l) => log.enabled(l));
  log.setLevel("info");
  try {
    // Bogus tokens are sent on purpose, more than AUTH_FAILURES_PER_MINUTE allows.
    await using svc = await fuzzService({
      API_TOKENS,
      LOG_LEVEL: "INFO",
      AUTH_FAILURES_PER_MINUTE: "0",
    });
    const sent = await exerciseSecrets((path, init) =>
      Promise.resolve(svc.app.request(path, init))
    );
    // Logging was on: every one of those requests has its line.
    const lines = capturedLog.filter((l) => l.includes('"request_id":"fz-secret-'));
    assert.ok(lines.length >= sent, `${lines.length} request lines for ${sent} requests`);
    assert.deepEqual(leaks(capturedLog), []);
  } finally {
    log.setLevel(lowest ?? "warn");
  }
});

Deno.test({
  name:
    `fuzz (seed ${SEED_HEX}): secret values and tokens never reach the log (process, workers included)`,
  // The child's stdout/stderr readers end with the process, after the test's own checks.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const svc = await spawnService({
      DATA_DIR: tempDir("cs-fuzz-"),
      API_TOKENS,
      AUTH_FAILURES_PER_MINUTE: "0",
      LOG_LEVEL: "DEBUG",
      SERVICE_INSTANCE_ID: "fz-secrets",
      SERVICE_HEALTH_CHECK_ENABLED: "false",
    });
    try {
      const sent = await exerciseSecrets((path, init) => fetch(`${svc.url}${path}`, init));
      svc.kill("SIGTERM");
      await svc.status;
      await svc.drained;
      const lines = svc.lines.filter((l) => l.includes('"request_id":"fz-secret-'));
      assert.ok(lines.length >= sent, `${lines.length} request lines for ${sent} requests`);
      assert.deepEqual(leaks(svc.lines), []);
    } finally {
      svc.kill("SIGKILL");
      await svc.status;
    }
  },
});

// --- 6. The same fuzz with API tokens: refusals are problems too ----------------------------

Deno.test(`fuzz (seed ${SEED_HEX}): with API tokens, every refusal is a problem`, async () => {
  // The failure limit has its own test (auth_routes_test.ts); here every refusal is seen.
  await using svc = await fuzzService({ API_TOKENS, AUTH_FAILURES_PER_MINUTE: "0" });
  await seed(svc.app, { authorization: `Bearer ${TOKENS.admin}` });
  const r = new Rng(SEED ^ 0xa5a5a5a5);
  const f = new Findings();
  const auths = [
    ...Object.values(TOKENS).map((t) => `Bearer ${t}`),
    ...BOGUS.map((t) => `Bearer ${t}`),
    `bearer   ${TOKENS.admin}  `,
    `Basic ${btoa(`ops:${TOKENS.admin}`)}`,
    "Bearer",
    "",
  ];
  for (let i = 0; i < RANDOM_REQUESTS / 4; i++) {
    const e = ENDPOINTS[i % ENDPOINTS.length];
    const hasBody = e.body !== undefined && e.method !== "GET";
    const headers = fuzzHeaders(r, hasBody);
    if (r.chance(0.85)) headers.authorization = r.pick(auths);
    const s: Sent = {
      method: e.method,
      path: e.path(r) + fuzzQuery(r, e),
      headers,
      body: hasBody ? fuzzBody(r, () => e.body!(r)) : undefined,
    };
    const a = await f.run(svc.app, s, `${e.method} ${e.route}`);
    if (a?.status === 401 && !a.headers.get("www-authenticate")?.startsWith("Bearer")) {
      f.fail(s, "401 without WWW-Authenticate: Bearer");
    }
  }
  console.log(
    `fuzz with tokens, seed ${SEED_HEX}: ${f.requests} requests; statuses ${
      JSON.stringify(Object.fromEntries([...f.statuses].sort(([a], [b]) => a - b)))
    }`,
  );
  f.assertClean("fuzz with API tokens found answers that break the HTTP contract");
  assert.ok((f.statuses.get(401) ?? 0) > 0 && (f.statuses.get(403) ?? 0) > 0);
});

// --- 7. Random spellings of real routes with every kind of caller --------------------------

/** Each token of {@link TOKENS} and the scopes it holds. */
const HOLDS: Record<string, string[]> = {
  [TOKENS.reader]: ["config:read", "registry:read", "flags:read"],
  [TOKENS.writer]: ["config:read", "config:write"],
  [TOKENS.vault]: ["config:read", "config:write", "secrets:read"],
  [TOKENS.admin]: ["admin"],
};

/** `path` with letters percent-encoded (either hex case), `//`, `/./` and a trailing `/`. */
function respell(r: Rng, path: string, template: string): string {
  const tpl = template.split("/");
  const segs = path.split("/").map((s, i) => {
    if (i === 0 || tpl[i]?.startsWith("{")) return s;
    let out = "";
    for (const ch of s) {
      if (/[A-Za-z]/.test(ch) && r.chance(0.3)) {
        const hex = ch.charCodeAt(0).toString(16);
        out += "%" + (r.chance(0.5) ? hex.toUpperCase() : hex);
      } else out += ch;
    }
    return r.chance(0.1) ? "/" + out : r.chance(0.1) ? "./" + out : out;
  });
  return segs.join("/") + (r.chance(0.1) ? "/" : "");
}

Deno.test(`fuzz (seed ${SEED_HEX}): random spellings of every route, no 2xx without its scope`, async () => {
  await using svc = await fuzzService({ API_TOKENS, AUTH_FAILURES_PER_MINUTE: "0" });
  await seed(svc.app, { authorization: `Bearer ${TOKENS.admin}` });
  const doc = await (await svc.app.request("/openapi.json")).json();
  const ops: { method: string; template: string; needs: string[] | null; reveal: string[] }[] = [];
  for (const [template, item] of Object.entries(doc.paths as Record<string, object>)) {
    for (const [method, o] of Object.entries(item as Record<string, Record<string, never>>)) {
      const sec = o.security as Record<string, string[]>[];
      ops.push({
        method: method.toUpperCase(),
        template,
        needs: sec.length === 0 ? null : sec.flatMap((s) => s.bearer),
        reveal: (o["x-reveal-scopes"] as string[] | undefined) ?? [],
      });
    }
  }
  const r = new Rng(SEED ^ 0x3c3c3c3c);
  const callers = [undefined, ...BOGUS, ...Object.values(TOKENS)];
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  for (let i = 0; i < RANDOM_REQUESTS / 2; i++) {
    const op = r.pick(ops);
    const path = op.template.replace(/\{[^}]+\}/g, () => r.pick(["fz-key", "b", "orders", "x"]));
    const reveal = op.reveal.length > 0 && r.chance(0.5);
    const query = [
      r.pick(["environment", "%65nvironment", "environmen%74"]) + "=" +
      r.pick(["development", "%64evelopment"]),
      ...(reveal ? [r.pick(["reveal", "%72eveal"]) + "=" + r.pick(["true", "tru%65"])] : []),
    ].join("&");
    const token = r.pick(callers);
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    let body: string | undefined;
    if (op.method === "POST" || op.method === "PUT") {
      headers["content-type"] = "application/json";
      body = JSON.stringify({
        key: "fz-new",
        keys: ["b"],
        value: 1,
        environment: "development",
        service_name: "orders",
        service_url: "http://127.0.0.1:1",
        instance_id: "x",
        flag_name: "x",
        flags: [{ flag_name: "x" }],
        version: 1,
        context: {},
      });
    }
    const target = `${respell(r, path, op.template)}?${query}`;
    const res = await svc.app.request(target, { method: op.method, headers, body });
    await res.body?.cancel();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    const needs = op.needs === null ? null : [...op.needs, ...(reveal ? op.reveal : [])];
    const held = token ? HOLDS[token] ?? [] : [];
    const allowed = needs === null || held.includes("admin") ||
      needs.every((s) => held.includes(s));
    if (res.status >= 500 && !(res.status === 503 && op.template.endsWith("/url"))) {
      failures.push(`#${i} ${op.method} ${target}: ${res.status}`);
    }
    if (!allowed && res.status < 300) {
      failures.push(`#${i} ${op.method} ${target} without ${needs!.join("+")}: ${res.status}`);
    }
  }
  console.log(
    `fuzz of spellings, seed ${SEED_HEX}: ${RANDOM_REQUESTS / 2} requests; statuses ${
      JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))
    }`,
  );
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);
  assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(401) ?? 0) > 0);
  assert.ok((statuses.get(403) ?? 0) > 0);
});
