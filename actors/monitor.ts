/**
 * Inside a worker: probes the actor's backends every {@link PROBE_INTERVAL_MS} and reports
 * their state to the main thread, which answers `/health` from the last report.
 */
import { type BackendProbe, probeAll } from "../lib/backend.ts";
import type { BackendStatus } from "./protocol.ts";
import type { ActorContext } from "./actor_host.ts";
import type { CommonCalls } from "./common_protocol.ts";

/** How often backends are probed, in ms. */
export const PROBE_INTERVAL_MS = 5_000;

export class BackendMonitor {
  readonly #probes: BackendProbe[];
  readonly #fixed: BackendStatus[];
  #last: BackendStatus[] = [];

  /**
   * @param probes backends to probe; each is `unknown` until its first probe completes
   * @param fixed states that never change (disabled or in-process backends)
   */
  constructor(probes: BackendProbe[], fixed: BackendStatus[] = []) {
    this.#probes = probes;
    this.#fixed = fixed;
    this.#last = [
      ...fixed,
      ...probes.map((p): BackendStatus => ({ name: p.name, kind: p.kind, status: "unknown" })),
    ];
  }

  /** The last reported states. */
  get last(): BackendStatus[] {
    return this.#last;
  }

  /**
   * Reports the states known before any probe (probed backends `unknown`: not yet a failure)
   * and schedules the first probe. Call from the actor's `init`, so the main thread has a
   * state for every backend once the actor is ready.
   */
  start<M extends CommonCalls>(ctx: ActorContext<M>): void {
    ctx.emit({ type: "backend_status", backends: this.#last });
    ctx.after(0, { type: "probe" } as never);
  }

  /** Probes now and reports to the main thread. */
  async check<M extends CommonCalls>(ctx: ActorContext<M>): Promise<BackendStatus[]> {
    this.#last = [...this.#fixed, ...await probeAll(this.#probes)];
    ctx.emit({ type: "backend_status", backends: this.#last });
    return this.#last;
  }

  /** Probes now and schedules the next periodic probe as a self-message. */
  async tick<M extends CommonCalls>(ctx: ActorContext<M>): Promise<BackendStatus[]> {
    try {
      return await this.check(ctx);
    } finally {
      ctx.after(PROBE_INTERVAL_MS, { type: "probe" } as never);
    }
  }
}
