/**
 * The wire protocol between an actor client (main thread) and its worker. Types only.
 * Calls issued in one event-loop turn travel together in one `calls` message; the worker
 * answers with `replies` batches carrying each call's `id`. A `cancel` names calls posted
 * earlier whose caller is gone (the client hung up, or the call timed out): the worker skips
 * their work if it has not started it and sends no reply for them.
 */
import type { SerializedError } from "../lib/errors.ts";
import type { Settings } from "../lib/settings.ts";
import type { CommonEvent } from "./common_protocol.ts";
import type { ConfigEvent } from "./config_protocol.ts";
import type { FlagsEvent } from "./flags_protocol.ts";
import type { HealthEvent } from "./health_protocol.ts";
import type { RegistryEvent } from "./registry_protocol.ts";

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

/**
 * Unsolicited messages from any actor, as they cross the wire. Each actor's own events are
 * declared in its protocol file, and its client's `onEvent` sees only those (plus
 * {@link CommonEvent}).
 */
export type ActorEvent = CommonEvent | ConfigEvent | RegistryEvent | HealthEvent | FlagsEvent;
