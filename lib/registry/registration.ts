/**
 * What a registration request makes of an instance, what the sweep does to it, and the
 * events about it. Pure: no I/O.
 */
import {
  checkName,
  checkProbeTarget,
  type Instance,
  instanceIdFor,
  parseServiceUrl,
} from "./model.ts";

/** A registration request, as the register endpoint validated its shape. */
export interface RegistrationInput {
  service_name: string;
  service_url: string;
  /** Default: `${service_url without trailing /}/health`. */
  health_check_url?: string;
  metadata: Record<string, string>;
  ttl_seconds?: number | null;
}

/** The instance id a registration gets (see {@link instanceIdFor}). */
export function registrationId(input: RegistrationInput): string {
  return instanceIdFor(input.service_name, input.service_url, input.metadata);
}

/**
 * The instance `input` registers at `now` (ISO 8601), and the registration it replaces
 * (`prevOf` its id). Registering again with the same address keeps what health checks and
 * heartbeats learned; a new address starts over as `registered`.
 * @throws {ValidationError} for an invalid name or URL, or a probe target outside
 *   `allowedNetworks` (HEALTH_CHECK_ALLOWED_NETWORKS).
 */
export function registration(
  input: RegistrationInput,
  prevOf: (id: string) => Instance | undefined,
  opts: { allowedNetworks: string[]; now: string },
): { instance: Instance; prev: Instance | undefined } {
  checkName(input.service_name, "service_name");
  parseServiceUrl(input.service_url, "service_url");
  const healthUrl = input.health_check_url ??
    `${input.service_url.replace(/\/+$/, "")}/health`;
  if (input.health_check_url) parseServiceUrl(healthUrl, "health_check_url");
  checkProbeTarget(input.service_url, "service_url", opts.allowedNetworks);
  checkProbeTarget(healthUrl, "health_check_url", opts.allowedNetworks);
  const id = registrationId(input);
  checkName(id, "metadata.instance_id");
  const prev = prevOf(id);
  const same = prev && prev.service_url === input.service_url &&
    prev.health_check_url === healthUrl;
  const instance: Instance = {
    service_name: input.service_name,
    instance_id: id,
    service_url: input.service_url,
    health_check_url: healthUrl,
    metadata: input.metadata,
    status: same ? prev.status : "registered",
    last_health_check: same ? prev.last_health_check : null,
    last_check_latency_ms: same ? prev.last_check_latency_ms ?? null : null,
    registered_at: prev?.registered_at ?? opts.now,
    ttl_seconds: input.ttl_seconds ?? null,
    last_heartbeat: input.ttl_seconds ? opts.now : null,
    unhealthy_since: same ? prev.unhealthy_since : null,
    missed_heartbeat: same ? prev.missed_heartbeat ?? null : null,
  };
  return { instance, prev };
}

/** A registry event (REGISTRY_KAFKA_TOPIC) about `i`: `type` and, when given, `reason`. */
export function registryEvent(type: string, i: Instance, reason?: string) {
  return {
    event_id: crypto.randomUUID(),
    type,
    service_name: i.service_name,
    instance_id: i.instance_id,
    service_url: i.service_url,
    status: i.status,
    ...(i.source ? { source: i.source } : {}),
    ...(reason ? { reason } : {}),
    at: new Date().toISOString(),
  };
}

/**
 * What the sweep does to `i` at `now` (ms): mark it unhealthy for a missed heartbeat, remove
 * it for being unhealthy longer than `deregisterAfterMs` (0 = never), or nothing. Others'
 * instances (ZooKeeper) leave when their znode goes, never by our hand.
 */
export function sweepAction(
  i: Instance,
  now: number,
  deregisterAfterMs: number,
): "missed" | "expire" | null {
  if (i.source) return null;
  if (
    i.ttl_seconds && i.last_heartbeat && !i.missed_heartbeat &&
    now - Date.parse(i.last_heartbeat) > i.ttl_seconds * 1000
  ) return "missed";
  if (
    deregisterAfterMs > 0 && i.unhealthy_since &&
    now - Date.parse(i.unhealthy_since) > deregisterAfterMs
  ) return "expire";
  return null;
}
