/**
 * The wire protocol between an actor client (main thread) and its worker. Types only.
 * Calls issued in one event-loop turn travel together in one `calls` message; the worker
 * answers with `replies` batches carrying each call's `id`. A `cancel` names calls posted
 * earlier whose caller is gone (the client hung up, or the call timed out): the worker skips
 * their work if it has not started it and sends no reply for them.
 */
import type { SerializedError } from "../lib/errors.ts";
import type { Settings } from "../lib/settings.ts";
import type { ChangeView } from "../lib/config/model.ts";

/** A request map: message type → its request fields and its reply value. */
export type CallMap = Record<string, { req: Record<string, unknown>; res: unknown }>;

/** The discriminated union of request messages of a call map, tagged by `type`. */
export type MessageOf<M extends CallMap> = {
  [K in keyof M & string]: { type: K } & M[K]["req"];
}[keyof M & string];

export interface Call {
  id: number;
  msg: { type: string };
}

export type Reply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedError };

/** Main thread → worker. */
export type ToWorker =
  | { kind: "init"; actor: string; settings: Settings; options: Record<string, unknown> }
  | { kind: "calls"; calls: Call[] }
  | { kind: "cancel"; ids: number[] }
  | { kind: "stop" };

/** Worker → main thread. */
export type FromWorker =
  /**
   * The worker's module has loaded (first message, from its top level): the client's start
   * timeout counts from here, so module loading and type-checking do not eat it.
   */
  | { kind: "loaded" }
  | { kind: "ready" }
  | { kind: "init_failed"; error: SerializedError }
  | { kind: "replies"; replies: Reply[] }
  | { kind: "event"; event: ActorEvent }
  | { kind: "stopped" };

/** State of one backend as an actor sees it; feeds `/health`. */
export interface BackendStatus {
  /** Concern: storage, cache, registry, events, flags. */
  name: string;
  /** Implementation: sqlite, postgres, redis, zookeeper, embedded, kafka, unleash, file, none. */
  kind: string;
  /** `unknown`: its first probe has not completed yet (the actor is starting); not a failure. */
  status: "up" | "down" | "disabled" | "unknown";
  /** Round trip of the last probe, in milliseconds. */
  latency_ms?: number;
  /** Why it is down (never contains credentials). */
  error?: string;
  /** For the registry: whether this replica leads health checking. */
  role?: "leader" | "follower";
  /** For flags: how current each environment's definitions are (live, cached, stale, none). */
  environments?: Record<string, string>;
  /** ISO time of the last probe. */
  checked_at?: string;
}

/** Unsolicited messages from an actor. */
export type ActorEvent =
  | { type: "backend_status"; backends: BackendStatus[] }
  /** Committed configuration changes, in sequence order, for watchers. */
  | { type: "config_changes"; changes: ChangeView[] }
  /** The configuration store started or stopped failing (cached answers are stale). */
  | { type: "config_store"; failing: boolean }
  /** Registrations added/updated (with what a health check needs) or removed (keys). */
  | { type: "registry_changed"; added: HealthTarget[]; removed: string[] }
  /** Outcomes of health checks, for the registry. */
  | { type: "health_results"; results: HealthOutcome[] }
  /** This replica gained or lost leadership of health checking. */
  | { type: "leadership"; leader: boolean }
  /** These services' instances or statuses changed (answers about them are stale). */
  | { type: "registry_services_changed"; services: string[] };

/** What the HealthActor needs to check one instance; `key` is `service/instance`. */
export interface HealthTarget {
  key: string;
  health_check_url: string;
  service_url: string;
}

export interface HealthOutcome {
  key: string;
  healthy: boolean;
  checked_at: string;
  reason?: string;
}
