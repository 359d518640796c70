/** HealthActor messages and events. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { InstanceRef } from "./registry_protocol.ts";

/** What the HealthActor needs to check one instance. */
export type HealthTarget = InstanceRef & {
  health_check_url: string;
  service_url: string;
};

/** The outcome of one health check of an instance; `checked_at` is ISO 8601. */
export type HealthOutcome = InstanceRef & {
  healthy: boolean;
  checked_at: string;
  /**
   * How long the check took, in milliseconds (see `roundMs` in lib/health/prober.ts); absent
   * or null when it probed nothing (the target was refused first).
   */
  latency_ms?: number | null;
  reason?: string;
};

export type HealthCalls = CommonCalls & {
  /** Start (or update) checking these instances. */
  track: { req: { targets: HealthTarget[] }; res: void };
  untrack: { req: { targets: InstanceRef[] }; res: void };
  /** Checks these now (waiting for a check already running) and answers the outcomes. */
  check_now: { req: { targets: InstanceRef[] }; res: HealthOutcome[] };
  /** Runs the schedule only on the leader (the registry tells who that is). */
  set_active: { req: { active: boolean }; res: void };
};

/** HealthActor events. */
export type HealthEvent =
  /** Outcomes of health checks, for the registry. */
  { type: "health_results"; results: HealthOutcome[] };
