/** FlagActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";
import type { EvaluateOp, HttpAnswer, OfrepRequest } from "../lib/flags/evaluate.ts";

export type { HttpAnswer };

type NoFields = Record<never, never>;

export type FlagCalls = CommonCalls & {
  /**
   * One of the seed's evaluation endpoints, from the raw request body (validated in the
   * actor). Answers the JSON text of the response; ValidationError for bad input.
   */
  evaluate: { req: { op: EvaluateOp; body: string }; res: string };
  /** OFREP: one flag (`key`) or all (`key` null); `env` from the request header. */
  ofrep: { req: OfrepRequest; res: HttpAnswer };
  /** JSON text of `[{name, enabled, type?, description?, stale?}]`. */
  list: { req: { env: string }; res: string };
  /** JSON text of one flag's definition; NotFoundError when unknown. */
  get: { req: { env: string; name: string }; res: string };
  /** Fetches now; JSON text of `{environment, flags_synced, timestamp}`. */
  sync: { req: { env: string }; res: string };
  /** Self-messages: the poll loop, the outbox relay and the metrics report. */
  poll: { req: NoFields; res: void };
  relay: { req: NoFields; res: void };
  report: { req: NoFields; res: void };
};
