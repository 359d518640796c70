/** HealthActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { HealthOutcome, HealthTarget } from "./protocol.ts";

export type HealthCalls = CommonCalls & {
  /** Start (or update) checking these instances. */
  track: { req: { targets: HealthTarget[] }; res: void };
  untrack: { req: { keys: string[] }; res: void };
  /** Checks these now (waiting for a check already running) and answers the outcomes. */
  check_now: { req: { keys: string[] }; res: HealthOutcome[] };
  /** Runs the schedule only on the leader (the registry tells who that is). */
  set_active: { req: { active: boolean }; res: void };
};
