/**
 * Service registry domain: instance shape, URL and name validation, the SSRF guard for health
 * probes, the Curator x-discovery znode format, and load balancing. Pure: no I/O, no drivers.
 */
import { BackendUnavailableError, ValidationError } from "../errors.ts";

/** `registered` until the first health check, then `healthy` or `unhealthy`. */
export type InstanceStatus = "registered" | "healthy" | "unhealthy";

/** One registered instance, as the durable record and the API see it. Times are ISO 8601. */
export interface Instance {
  service_name: string;
  instance_id: string;
  service_url: string;
  /** Defaults to `${service_url without trailing /}/health`. */
  health_check_url: string;
  /** String map; non-string values were JSON-stringified on input. */
  metadata: Record<string, string>;
  status: InstanceStatus;
  last_health_check: string | null;
  /**
   * How long the last health check took, in milliseconds rounded to 0.1: its last round's
   * slowest endpoint, up to the response headers or the failure (a timeout counts as the
   * timeout). Absent or null before the first check, and when the check probed nothing (a
   * target refused before any request).
   */
  last_check_latency_ms?: number | null;
  registered_at: string;
  /** Heartbeat deadline in seconds; null when the instance does not heartbeat. */
  ttl_seconds: number | null;
  last_heartbeat: string | null;
  /** When the current unhealthy streak began; null while healthy or unchecked. */
  unhealthy_since: string | null;
  /**
   * Set while the instance is unhealthy for a missed heartbeat: the status its next heartbeat
   * restores (a health check that passes meanwhile makes that `healthy`, and nothing more: a
   * TTL is its own check, as in Consul). Absent or null while its heartbeats are current.
   * Stored with the record, so a restart keeps it.
   */
  missed_heartbeat?: InstanceStatus | null;
  /**
   * `"zookeeper"` for an instance someone else registered in ZooKeeper (Curator, Spring
   * Cloud Zookeeper): watched there, health-checked, never stored or modified by us. Absent
   * for registrations through the API.
   */
  source?: "zookeeper";
  /** A ZooKeeper instance its owner took out of service (`enabled: false`, not `UP`). */
  disabled?: boolean;
}

/** Longest accepted service or health-check URL, in characters. */
const MAX_URL_CHARS = 2048;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError([{ field, in: "body", message }]);
}

/**
 * Parses `http(s)://host[:port][/path]`. `host` is lower-case and, for IPv6, keeps its
 * brackets (as WHATWG URL gives it), so `${scheme}://${host}:${port}${path}` is a valid URL.
 * `port` defaults to 80 for http and 443 for https. `path` is the path plus query, "" for the
 * root; a fragment is dropped (it never reaches the server).
 *
 * @throws {ValidationError} naming `field` when the URL does not parse, is longer than 2048
 * characters, is not http/https, carries credentials, or has port 0.
 */
export function parseServiceUrl(
  url: string,
  field: string,
): { scheme: "http" | "https"; host: string; port: number; path: string } {
  if (typeof url !== "string" || url.trim() === "") {
    throw invalid(field, "must be an http or https URL");
  }
  if (url.length > MAX_URL_CHARS) {
    throw invalid(field, `must be at most ${MAX_URL_CHARS} characters`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(field, `cannot parse ${JSON.stringify(url)} as a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw invalid(field, `must use http or https, not ${u.protocol.slice(0, -1)}`);
  }
  // Credentials would be echoed in every list/discover response and znode.
  if (u.username !== "" || u.password !== "") {
    throw invalid(field, "must not contain credentials");
  }
  if (u.hostname === "") throw invalid(field, "must name a host");
  const scheme = u.protocol === "https:" ? "https" : "http";
  // WHATWG URL blanks the port when it equals the scheme default.
  const port = u.port === "" ? (scheme === "https" ? 443 : 80) : Number(u.port);
  if (port === 0) throw invalid(field, "port must be between 1 and 65535");
  const path = u.pathname === "/" && u.search === "" ? "" : u.pathname + u.search;
  return { scheme, host: u.hostname, port, path };
}

// --- IP literals -------------------------------------------------------------------------

function parseIPv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function parseIPv6(s: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      // An embedded IPv4 tail (::ffff:1.2.3.4) stands for the last two groups.
      if (k === parts.length - 1 && p.includes(".")) {
        const v4 = parseIPv4(p);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    all = head;
  }
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The bytes of an IP literal (4 for v4, 16 for v6), or null when `s` is not one. */
function ipBytes(s: string): number[] | null {
  const bare = s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
  return parseIPv4(bare) ?? (bare.includes(":") ? parseIPv6(bare) : null);
}

function prefixMatch(a: number[], b: number[], bits: number): boolean {
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i] & mask) !== (b[i] & mask)) return false;
  }
  return true;
}

/**
 * True when `ip` (a v4 or v6 literal; v6 may be in [brackets]) is inside `cidr`
 * ("10.0.0.0/8", "fe80::/10"; a bare address means a single host). Families are compared
 * strictly: an IPv4-mapped v6 address is not inside a v4 network. Never throws: a malformed
 * `ip` or `cidr` gives false.
 */
export function inCidr(ip: string, cidr: string): boolean {
  const a = ipBytes(ip);
  if (!a) return false;
  const slash = cidr.indexOf("/");
  const net = ipBytes(slash < 0 ? cidr : cidr.slice(0, slash));
  if (!net || net.length !== a.length) return false;
  const max = a.length * 8;
  let bits = max;
  if (slash >= 0) {
    const p = cidr.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return false;
    bits = Number(p);
    if (bits > max) return false;
  }
  return prefixMatch(a, net, bits);
}

// --- SSRF guard --------------------------------------------------------------------------

const BLOCKED_NETWORKS = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];
const BLOCKED_NAMES = new Set(["metadata.google.internal", "metadata"]);
/** v6 forms that reach an IPv4 address: IPv4-mapped and the NAT64 well-known prefix. */
const V4_CARRIERS = ["::ffff:0:0/96", "64:ff9b::/96"];

/** The IPv4 address a v6 literal carries (mapped or NAT64), in dotted form. */
function carriedV4(host: string): string | null {
  if (!V4_CARRIERS.some((c) => inCidr(host, c))) return null;
  const b = ipBytes(host)!;
  return b.slice(12).join(".");
}

/**
 * SSRF guard for health probes: refuses link-local and cloud-metadata targets
 * (169.254.0.0/16, fe80::/10, fd00:ec2::254, the names `metadata.google.internal` and
 * `metadata`, and v6 forms carrying a refused v4 address) unless an entry of `allowed`
 * covers the host. `allowed` holds CIDR strings ("169.254.0.0/16", "fe80::/10"), single
 * addresses, or exact host names (e.g. `HEALTH_CHECK_ALLOWED_NETWORKS`); malformed entries
 * cover nothing. Loopback and private networks are allowed. Only IP literals and those names
 * are judged: no DNS lookup, so a name that resolves to a refused address passes here.
 *
 * @throws {ValidationError} naming `field` when the URL is invalid (see
 * {@link parseServiceUrl}) or the target is refused.
 */
export function checkProbeTarget(url: string, field: string, allowed: string[]): void {
  const { host } = parseServiceUrl(url, field);
  if (ipBytes(host)) {
    const v4 = carriedV4(host);
    const candidates = v4 ? [host, v4] : [host];
    const blocked = candidates.some((ip) => BLOCKED_NETWORKS.some((n) => inCidr(ip, n)));
    if (!blocked) return;
    if (allowed.some((a) => candidates.some((ip) => inCidr(ip, a.trim())))) return;
  } else {
    // A trailing dot names the same host in DNS and would otherwise slip past the list.
    const name = host.replace(/\.+$/, "");
    if (!BLOCKED_NAMES.has(name)) return;
    if (allowed.some((a) => a.trim().toLowerCase().replace(/\.+$/, "") === name)) return;
  }
  throw invalid(
    field,
    `refers to a link-local or cloud-metadata address (${host}); ` +
      "allow it in HEALTH_CHECK_ALLOWED_NETWORKS to probe it",
  );
}

// --- Curator x-discovery znode -----------------------------------------------------------

const ZK_INSTANCE_CLASS = "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance";
/** Our fields carried in `payload.metadata`; they win over user metadata of the same name. */
const OWN_KEYS = [
  "service_url",
  "health_check_url",
  "status",
  "last_health_check",
  "instance_status",
] as const;
const STATUSES: readonly string[] = ["registered", "healthy", "unhealthy"];

/**
 * The znode JSON that Apache Curator x-discovery (`ServiceInstance` via
 * `JsonInstanceSerializer`) and Spring Cloud Zookeeper read: `name`, `id`, `address`,
 * `port`, `sslPort`, `payload`, `registrationTimeUTC` (epoch ms), `serviceType: "DYNAMIC"`,
 * `uriSpec`. http fills `port`, https fills `sslPort` (the other null). `address` keeps IPv6
 * brackets so the uriSpec builds a valid URI. `payload` is Spring's `ZookeeperInstance`
 * (`@class`, `id`, `name`, `metadata`) with `metadata` = the instance's metadata plus
 * service_url, health_check_url, status and last_health_check ("" when null).
 *
 * Health is in the znode for JVM clients, as REST `discover` sees it: `enabled` (Curator's
 * `ServiceProvider` filter) is true only while the instance is healthy, and
 * `payload.metadata.instance_status` (Spring Cloud LoadBalancer's filter, which passes `UP`
 * only) is `UP` while healthy, `OUT_OF_SERVICE` while unhealthy and `STARTING` before the
 * first check: an instance not yet checked is not discovered through REST either.
 */
export function curatorJson(i: Instance): string {
  const u = parseServiceUrl(i.service_url, "service_url");
  const https = u.scheme === "https";
  const uriParts: { value: string; variable: boolean }[] = [
    { value: "scheme", variable: true },
    { value: "://", variable: false },
    { value: "address", variable: true },
    { value: ":", variable: false },
    // Curator fills {port} with "" when port is null; https instances only have ssl-port.
    { value: https ? "ssl-port" : "port", variable: true },
  ];
  if (u.path !== "") uriParts.push({ value: u.path, variable: false });
  const registered = Date.parse(i.registered_at);
  const metadata: Record<string, string> = {
    ...i.metadata,
    service_url: i.service_url,
    health_check_url: i.health_check_url,
    status: i.status,
    last_health_check: i.last_health_check ?? "",
    instance_status: INSTANCE_STATUS[i.status],
  };
  return JSON.stringify({
    name: i.service_name,
    id: i.instance_id,
    address: u.host,
    port: https ? null : u.port,
    sslPort: https ? u.port : null,
    payload: { "@class": ZK_INSTANCE_CLASS, id: i.instance_id, name: i.service_name, metadata },
    // Curator's own default for an unknown registration time.
    registrationTimeUTC: Number.isNaN(registered) ? 0 : registered,
    serviceType: "DYNAMIC",
    uriSpec: { parts: uriParts },
    enabled: i.status === "healthy",
  });
}

/** Spring Cloud Zookeeper's `instance_status` for each of our statuses. */
const INSTANCE_STATUS: Record<InstanceStatus, string> = {
  healthy: "UP",
  unhealthy: "OUT_OF_SERVICE",
  registered: "STARTING",
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Inverse of {@link curatorJson} for znodes we wrote. `ttl_seconds`, `last_heartbeat` and
 * `unhealthy_since` are not in the znode and come back null; user metadata named like one
 * of our fields was overwritten on the way in and is not recovered. Returns null for
 * anything else (not JSON, another payload class, no `service_url`, non-string metadata).
 */
export function fromCuratorJson(json: string): Instance | null {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isRecord(doc) || typeof doc.name !== "string" || typeof doc.id !== "string") return null;
  const p = doc.payload;
  if (!isRecord(p) || p["@class"] !== ZK_INSTANCE_CLASS || !isRecord(p.metadata)) return null;
  const md = p.metadata;
  if (!Object.values(md).every((v) => typeof v === "string")) return null;
  const m = md as Record<string, string>;
  if (!m.service_url || !STATUSES.includes(m.status)) return null;
  const ms = doc.registrationTimeUTC;
  if (typeof ms !== "number" || !Number.isFinite(ms)) return null;
  const own: readonly string[] = OWN_KEYS;
  return {
    service_name: doc.name,
    instance_id: doc.id,
    service_url: m.service_url,
    health_check_url: m.health_check_url || `${m.service_url.replace(/\/+$/, "")}/health`,
    metadata: Object.fromEntries(Object.entries(m).filter(([k]) => !own.includes(k))),
    status: m.status as InstanceStatus,
    last_health_check: m.last_health_check || null,
    registered_at: new Date(ms).toISOString(),
    ttl_seconds: null,
    last_heartbeat: null,
    unhealthy_since: null,
  };
}

// --- Load balancing ----------------------------------------------------------------------

/** Largest honoured `metadata.weight`; bigger or malformed values count as 1. */
const MAX_WEIGHT = 999_999_999;

function weightOf(i: Instance): number {
  const w = i.metadata.weight;
  if (w === undefined || !/^\d{1,9}$/.test(w.trim())) return 1;
  const n = Number(w.trim());
  return n >= 1 && n <= MAX_WEIGHT ? n : 1;
}

function byId(list: Instance[]): Instance[] {
  return [...list].sort((a, b) =>
    a.instance_id < b.instance_id ? -1 : a.instance_id > b.instance_id ? 1 : 0
  );
}

/**
 * Load balancer state, one per registry actor. {@link Balancer.pick} chooses one of the
 * healthy instances of a service by strategy:
 * - `"round_robin"` (default): each instance in turn, ordered by `instance_id` so the order
 *   the caller lists them in does not matter; resumes after the last pick when instances
 *   come and go. Becomes `"weighted"` when any instance has `metadata.weight`.
 * - `"random"`: uniform.
 * - `"weighted"`: smooth weighted round-robin (nginx's algorithm) by `metadata.weight`, a
 *   positive integer up to 999999999, default 1; a malformed weight counts as 1.
 */
export class Balancer {
  /** service → instance_id of the last round-robin pick. */
  #last = new Map<string, string>();
  /** service → instance_id → current weight of the smooth WRR. */
  #current = new Map<string, Map<string, number>>();

  /**
   * One healthy instance of `list` (a service's instances) by `strategy`.
   * @throws {BackendUnavailableError} when none of them is healthy.
   */
  pickHealthy(
    service: string,
    list: Instance[],
    strategy?: "round_robin" | "random" | "weighted",
  ): Instance {
    const healthy = list.filter((i) => i.status === "healthy");
    const chosen = this.pick(service, healthy, strategy);
    if (chosen) return chosen;
    throw new BackendUnavailableError(
      "registry",
      `No healthy instance of ${service} (${list.length} registered)`,
    );
  }

  /** One instance of `healthy`, or null when it is empty. */
  pick(
    service: string,
    healthy: Instance[],
    strategy: "round_robin" | "random" | "weighted" = "round_robin",
  ): Instance | null {
    if (healthy.length === 0) return null;
    if (strategy === "random") return healthy[Math.floor(Math.random() * healthy.length)];
    const sorted = byId(healthy);
    if (strategy === "weighted" || sorted.some((i) => i.metadata.weight !== undefined)) {
      return this.#weighted(service, sorted);
    }
    return this.#roundRobin(service, sorted);
  }

  #roundRobin(service: string, sorted: Instance[]): Instance {
    const last = this.#last.get(service);
    const next = (last === undefined ? undefined : sorted.find((i) => i.instance_id > last)) ??
      sorted[0];
    this.#last.set(service, next.instance_id);
    return next;
  }

  #weighted(service: string, sorted: Instance[]): Instance {
    const prev = this.#current.get(service) ?? new Map<string, number>();
    // Rebuilt from the live list so departed instances leave no state behind.
    const cur = new Map<string, number>();
    let total = 0;
    let best: Instance | null = null;
    let bestWeight = -Infinity;
    for (const i of sorted) {
      const w = weightOf(i);
      const c = (prev.get(i.instance_id) ?? 0) + w;
      cur.set(i.instance_id, c);
      total += w;
      if (c > bestWeight) {
        best = i;
        bestWeight = c;
      }
    }
    cur.set(best!.instance_id, bestWeight - total);
    this.#current.set(service, cur);
    return best!;
  }
}

// --- Names and metadata ------------------------------------------------------------------

const NAME_RE = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Validates a service name or instance id: 1–128 characters of `[A-Za-z0-9._-]`, and not
 * "." or ".." (ZooKeeper refuses those as path components).
 *
 * @throws {ValidationError} naming `field`.
 */
export function checkName(value: string, field: string): void {
  if (typeof value !== "string" || !NAME_RE.test(value)) {
    throw invalid(field, "must be 1-128 characters of letters, digits, '.', '_' or '-'");
  }
  if (value === "." || value === "..") throw invalid(field, `must not be "${value}"`);
}

/** 32-bit FNV-1a as 8 hex digits: a short, stable suffix for truncated ids. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let k = 0; k < s.length; k++) {
    h ^= s.charCodeAt(k);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * The instance id of a registration: `metadata.instance_id` when given (a string, or a
 * number taken as its decimal text), else `${serviceName}-${host}-${port}` from
 * `serviceUrl` with characters outside `[A-Za-z0-9._-]` replaced by "-", shortened to 128
 * characters with a hash suffix when longer. The generated id is stable, so registering the
 * same URL again updates the same instance.
 *
 * @throws {ValidationError} naming `metadata.instance_id` when it is given but not a valid
 * name, or `service_url` when the URL is invalid.
 */
export function instanceIdFor(
  serviceName: string,
  serviceUrl: string,
  metadata: Record<string, unknown>,
): string {
  const given = metadata?.instance_id;
  if (given !== undefined && given !== null) {
    const id = typeof given === "number" ? String(given) : given;
    checkName(id as string, "metadata.instance_id");
    return id as string;
  }
  const { host, port } = parseServiceUrl(serviceUrl, "service_url");
  const raw = `${serviceName}-${host.replace(/^\[|\]$/g, "")}-${port}`;
  const id = raw.replace(/[^A-Za-z0-9._-]/g, "-");
  return id.length <= 128 ? id : `${id.slice(0, 119)}-${fnv1a(raw)}`;
}

const MAX_META_ENTRIES = 64;
const MAX_META_KEY = 128;
const MAX_META_VALUE = 1024;

/**
 * Metadata as a string map: strings kept, other JSON values `JSON.stringify`'d; absent
 * (undefined/null) gives {}. Limits: at most 64 entries, keys at most 128 characters,
 * values at most 1024 characters after stringifying.
 *
 * @throws {ValidationError} naming `metadata` when it is not an object or breaks a limit.
 */
export function normalizeMetadata(m: unknown): Record<string, string> {
  if (m === undefined || m === null) return {};
  if (!isRecord(m)) throw invalid("metadata", "must be an object of string values");
  const entries = Object.entries(m);
  if (entries.length > MAX_META_ENTRIES) {
    throw invalid("metadata", `must have at most ${MAX_META_ENTRIES} entries`);
  }
  const out: [string, string][] = [];
  for (const [k, v] of entries) {
    if (k.length > MAX_META_KEY) {
      throw invalid(
        "metadata",
        `key ${JSON.stringify(k.slice(0, 32))}… is over ${MAX_META_KEY} characters`,
      );
    }
    const s = typeof v === "string" ? v : JSON.stringify(v) ?? "null";
    if (s.length > MAX_META_VALUE) {
      throw invalid(
        "metadata",
        `value of ${JSON.stringify(k)} is over ${MAX_META_VALUE} characters`,
      );
    }
    out.push([k, s]);
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
  return Object.fromEntries(out);
}

/**
 * An instance as `services` and `services/{name}` show it: with the last check's latency
 * (null before the first check).
 */
export function instanceView(i: Instance) {
  return {
    instance_id: i.instance_id,
    service_url: i.service_url,
    health_check_url: i.health_check_url,
    status: i.status,
    last_health_check: i.last_health_check,
    last_check_latency_ms: i.last_check_latency_ms ?? null,
    metadata: i.metadata,
    source: i.source ?? ("api" as const),
  };
}

/**
 * An instance as `discover` shows it: {@link instanceView} without the check's latency. A
 * caller of `discover` picks an instance to call; the latency is for people watching the
 * registry, and `discover`'s answer stays as it was.
 */
export function discoverView(i: Instance) {
  const { last_check_latency_ms: _latency, ...view } = instanceView(i);
  return view;
}
