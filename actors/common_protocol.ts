/** Messages every actor answers, and the event every actor sends. Types only. */
import type { BackendStatus } from "./protocol.ts";
import type { Collected } from "../lib/metrics.ts";

type NoFields = Record<never, never>;

export type CommonCalls = {
  /** Liveness of the actor itself; answered without touching a backend. */
  ping: { req: NoFields; res: { actor: string; ok: true } };
  /** Probes the actor's backends now. */
  status: { req: NoFields; res: BackendStatus[] };
  /** The actor's own metric families, read when `/metrics` is scraped. */
  metrics: { req: NoFields; res: Collected[] };
  /** Self-message: periodic probe of the backends. */
  probe: { req: NoFields; res: BackendStatus[] };
};

/** The state of the actor's backends, sent after every probe; feeds `/health`. */
export type CommonEvent = { type: "backend_status"; backends: BackendStatus[] };
