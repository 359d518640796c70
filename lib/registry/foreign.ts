/**
 * Instances that others registered in ZooKeeper (Apache Curator x-discovery, Spring Cloud
 * Zookeeper): what their znode says, as an {@link Instance} with `source: "zookeeper"`.
 * Pure: no I/O.
 */
import {
  checkName,
  fromCuratorJson,
  type Instance,
  normalizeMetadata,
  parseServiceUrl,
} from "./model.ts";
import { ValidationError } from "../errors.ts";

/** What one znode under a service parent is, to the registry. */
export type ZnodeKind =
  /** Written by config-service (this replica or another): our own format. */
  | { kind: "ours" }
  /** Registered by someone else; `instance` is what the registry shows of it. */
  | { kind: "foreign"; instance: Instance }
  /** Not a usable service instance; left alone, and logged once. */
  | { kind: "invalid"; reason: string };

/** Largest znode text read as an instance (ZooKeeper's own limit is 1 MiB). */
export const MAX_INSTANCE_JSON = 64 * 1024;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const portOf = (v: unknown): number | null =>
  typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65_535 ? v : null;

/** `address` as a URL host: IPv6 literals in brackets. */
function urlHost(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

/**
 * Curator's `UriSpec.build` over the instance's own fields: `scheme` is https when `sslPort`
 * is set, `port`/`ssl-port` are "" when null, `open-brace`/`close-brace` are braces, and any
 * other variable is "" (no variables are passed when a client builds the URI).
 */
function buildUriSpec(
  spec: unknown,
  f: { name: string; id: string; address: string; port: number | null; ssl: number | null },
): string | null {
  if (!isRecord(spec) || !Array.isArray(spec.parts)) return null;
  let out = "";
  for (const p of spec.parts) {
    if (!isRecord(p) || typeof p.value !== "string") return null;
    if (!p.variable) {
      out += p.value;
      continue;
    }
    switch (p.value) {
      case "scheme":
        out += f.ssl !== null ? "https" : "http";
        break;
      case "name":
        out += f.name;
        break;
      case "id":
        out += f.id;
        break;
      case "address":
        out += urlHost(f.address);
        break;
      case "port":
        out += f.port ?? "";
        break;
      case "ssl-port":
        out += f.ssl ?? "";
        break;
      case "open-brace":
        out += "{";
        break;
      case "close-brace":
        out += "}";
        break;
    }
  }
  return out;
}

/** `s` when it is a URL the API accepts at registration (see {@link parseServiceUrl}), else null. */
function usableUrl(s: string | null): string | null {
  if (!s) return null;
  try {
    parseServiceUrl(s, "service_url");
    return s;
  } catch {
    return null;
  }
}

/**
 * Whether the instance's owner took it out of service: Curator's `enabled: false`, or a
 * Spring Cloud Zookeeper `instance_status` other than `UP` (what Spring Cloud LoadBalancer
 * passes). Such an instance is not discovered, whatever its health checks find.
 */
export function disabledByOwner(enabled: unknown, metadata: Record<string, string>): boolean {
  const st = metadata.instance_status;
  return enabled === false || (st !== undefined && st.toUpperCase() !== "UP");
}

/**
 * Classifies the znode `service/id` holding `json`. A foreign instance needs `address` and a
 * `port` or `sslPort`; its URL is the one its `uriSpec` builds (as Curator's and Spring's
 * clients do) when that is an http(s) URL, else `scheme://address:port`; its metadata is the
 * payload's string map (Spring's `ZookeeperInstance.metadata`; other payloads give {}) within
 * the registry's metadata limits; its health URL is `metadata.health_check_url` when that is
 * an http(s) URL, else its URL + `healthPath` (Spring Boot's `/actuator/health` by default).
 * It starts `registered`, like an instance registered through the API; `disabled` says its
 * owner took it out of service (see {@link disabledByOwner}).
 */
export function classifyZnode(
  service: string,
  id: string,
  json: string,
  healthPath: string,
): ZnodeKind {
  if (json.length > MAX_INSTANCE_JSON) {
    return { kind: "invalid", reason: `znode data is over ${MAX_INSTANCE_JSON} bytes` };
  }
  if (fromCuratorJson(json) !== null) return { kind: "ours" };
  try {
    checkName(service, "service_name");
    checkName(id, "instance_id");
  } catch {
    return { kind: "invalid", reason: "service or instance name outside [A-Za-z0-9._-]{1,128}" };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return { kind: "invalid", reason: "znode data is not JSON" };
  }
  if (!isRecord(doc) || typeof doc.address !== "string" || doc.address === "") {
    return { kind: "invalid", reason: "no address (not a Curator ServiceInstance)" };
  }
  // A host name or an IP address, nothing that would move the URL's port or path.
  if (!/^([A-Za-z0-9._-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?)$/.test(doc.address)) {
    return {
      kind: "invalid",
      reason: `address ${JSON.stringify(doc.address.slice(0, 64))} is no host`,
    };
  }
  const port = portOf(doc.port);
  const ssl = portOf(doc.sslPort);
  if (port === null && ssl === null) {
    return { kind: "invalid", reason: "neither port nor sslPort" };
  }
  const fields = { name: service, id, address: doc.address, port, ssl };
  const fallback = ssl !== null
    ? `https://${urlHost(doc.address)}:${ssl}`
    : `http://${urlHost(doc.address)}:${port}`;
  // A uriSpec naming a port the instance does not have (Spring's `{port}` on an https-only
  // instance) would build `https://host:`, which reads as port 443: use the fallback then.
  const spec = isRecord(doc.uriSpec) && Array.isArray(doc.uriSpec.parts) ? doc.uriSpec.parts : [];
  const names = (v: string) =>
    spec.some((p) => isRecord(p) && p.variable === true && p.value === v);
  const built = (names("port") && port === null) || (names("ssl-port") && ssl === null)
    ? null
    : buildUriSpec(doc.uriSpec, fields);
  const url = usableUrl(built) ?? usableUrl(fallback);
  if (!url) return { kind: "invalid", reason: `address ${JSON.stringify(doc.address)} is no host` };

  const p = doc.payload;
  const raw = isRecord(p) && isRecord(p.metadata) ? p.metadata : {};
  let metadata: Record<string, string>;
  try {
    metadata = normalizeMetadata(raw);
  } catch (err) {
    return {
      kind: "invalid",
      reason: err instanceof ValidationError
        ? `metadata ${err.errors[0]?.message ?? "out of limits"}`
        : "metadata out of limits",
    };
  }
  const healthUrl = usableUrl(metadata.health_check_url ?? null) ??
    `${url.replace(/\/+$/, "")}${healthPath}`;
  const ms = doc.registrationTimeUTC;
  const registered = typeof ms === "number" && Number.isFinite(ms) && ms > 0 &&
      ms < 8.64e15
    ? new Date(ms).toISOString()
    : new Date(0).toISOString();
  // Curator reads `enabled` with Jackson, which takes the string "false" as false too.
  const disabled = disabledByOwner(doc.enabled === "false" ? false : doc.enabled, metadata);
  return {
    kind: "foreign",
    instance: {
      service_name: service,
      instance_id: id,
      service_url: url,
      health_check_url: healthUrl,
      metadata,
      status: "registered",
      last_health_check: null,
      registered_at: registered,
      ttl_seconds: null,
      last_heartbeat: null,
      unhealthy_since: null,
      source: "zookeeper",
      disabled,
    },
  };
}

/**
 * The registry's state of a foreign instance whose znode now reads `f`, after `prev` (its
 * state before, if any), at `now` (ISO 8601). Same address: what health checks learned is
 * kept. Taken out of service by its owner: unhealthy at once; back in service: `registered`
 * until its next health check. `retarget`: the health checker must learn of it (new, or a
 * new address).
 */
export function foreignNext(
  prev: Instance | undefined,
  f: Instance,
  now: string,
): { next: Instance; retarget: boolean } {
  const same = prev !== undefined && prev.service_url === f.service_url &&
    prev.health_check_url === f.health_check_url;
  let next: Instance = {
    ...f,
    status: same ? prev.status : "registered",
    last_health_check: same ? prev.last_health_check : null,
    last_check_latency_ms: same ? prev.last_check_latency_ms ?? null : null,
    unhealthy_since: same ? prev.unhealthy_since : null,
  };
  if (f.disabled) {
    next = { ...next, status: "unhealthy", unhealthy_since: next.unhealthy_since ?? now };
  } else if (prev?.disabled) {
    next = { ...next, status: "registered", unhealthy_since: null };
  }
  return { next, retarget: !same };
}
