/** FlagActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { HttpAnswer } from "../lib/flags/evaluate.ts";
import type { CountsBatch } from "../lib/flags/counts.ts";
import type { FlagSnapshot } from "../lib/flags/snapshot.ts";
import type { MetricsBucket } from "../lib/flags/sources.ts";

export type { HttpAnswer };

type NoFields = Record<never, never>;

export type FlagCalls = CommonCalls & {
  /**
   * Unleash Client API: `env`'s client-API JSON and ETag (304 when `inm` names it);
   * BackendUnavailableError before the environment has definitions.
   */
  clientFeatures: { req: { env: string; inm: string | null }; res: HttpAnswer };
  /** Unleash Client API: an SDK's register (`toggles` null) or metrics call in `env`. */
  clientUsage: {
    req: { env: string; instance: string; toggles: MetricsBucket["toggles"] | null };
    res: void;
  };
  /**
   * What the HTTP thread counted while evaluating (answers by reason, usage per flag), at most
   * once a second: feeds the `metrics` reply and the Unleash usage report.
   */
  usage: { req: { counts: CountsBatch }; res: void };
  /** Fetches now; JSON text of `{environment, flags_synced, timestamp}`. */
  sync: { req: { env: string }; res: string };
  /** Self-messages: the poll loop, the outbox relay and the metrics report. */
  poll: { req: NoFields; res: void };
  relay: { req: NoFields; res: void };
  report: { req: NoFields; res: void };
};

/**
 * The FlagActor's events. `flag_snapshot`: at start and at every change of an environment's
 * definitions or freshness facts, the environments that changed (each with its document
 * when the definitions themselves changed); the HTTP thread evaluates over them.
 */
export type FlagsEvent = { type: "flag_snapshot" } & FlagSnapshot;
