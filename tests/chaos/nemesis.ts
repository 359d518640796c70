/**
 * The chaos run's nemesis: a seeded sequence of faults, one at a time (or two at once with
 * `overlap`), each held for a few seconds and then healed, with a quiet gap before the next.
 *
 * - `kill-replica`: SIGKILL of a replica, started again (same port, same environment) at the
 *   end of the hold;
 * - `pause-replica`: SIGSTOP, SIGCONT at the end of a hold longer than the ZooKeeper session
 *   timeout, so the replica's session expires while it is frozen;
 * - `stop-<backend>`: `bash scripts/stack.sh stop <backend>`, then `start`, which returns once
 *   the backend is ready again.
 *
 * Each fault is written to the history as `fault.start` (t0 when the nemesis acted, t1 when the
 * action returned) and `fault.end` (t0 when healing began, t1 when the fault was healed: the
 * replica listening again, the backend ready). Every fault begun is healed, also when the run
 * is aborted: {@link Nemesis.run} heals in `finally`, and {@link Nemesis.healAll} heals whatever
 * a failed heal left.
 */
import { stack } from "../_helpers.ts";
import type { Cluster } from "./cluster.ts";
import type { FaultEnd, FaultKind, FaultStart, HistoryWriter, Replica } from "./history.ts";
import { abortableSleep, Rng } from "./workload.ts";

/** The stack's servers the nemesis stops, by fault kind. */
const BACKEND: Partial<Record<FaultKind, string>> = {
  "stop-postgres": "postgres",
  "stop-redis": "redis",
  "stop-zookeeper": "zookeeper",
  "stop-kafka": "kafka",
  "stop-unleash": "unleash",
};

/** Every kind, in the order a fresh deck starts from before it is shuffled. */
export const FAULT_KINDS: FaultKind[] = [
  "kill-replica",
  "pause-replica",
  "stop-postgres",
  "stop-redis",
  "stop-zookeeper",
  "stop-kafka",
  "stop-unleash",
];

/** What a fault takes out: a replica, or a backend (Unleash needs PostgreSQL to start). */
function targetOf(fault: FaultKind, replica?: Replica): string {
  return replica ? `replica-${replica}` : BACKEND[fault]!;
}

/** Two faults that may not overlap: the same target, or PostgreSQL with Unleash (whose start
 * needs PostgreSQL up, so healing Unleash while PostgreSQL is stopped would fail). */
export function conflicts(a: string, b: string): boolean {
  if (a === b) return true;
  const pair = new Set([a, b]);
  return pair.has("postgres") && pair.has("unleash");
}

export interface NemesisOptions {
  cluster: Cluster;
  history: HistoryWriter;
  /** Milliseconds since the run began (the history's clock). */
  now: () => number;
  seed: number;
  /** No fault starts unless its hold ends this long (ms) before `endMs`. */
  endMs: number;
  overlap: boolean;
  /** The replicas' ZooKeeper session timeout, ms: a pause is held 1.5× that (plus jitter). */
  sessionTimeoutMs: number;
  /** Quiet time before the first fault, ms. */
  firstDelayMs?: number;
  log?: (line: string) => void;
}

interface Active {
  id: number;
  fault: FaultKind;
  target?: Replica;
  /** What it takes out, for {@link conflicts}. */
  what: string;
}

/** Runs the fault schedule; see the module comment. */
export class Nemesis {
  readonly #o: NemesisOptions;
  readonly #active = new Map<number, Active>();
  readonly #healing = new Map<number, Promise<void>>();
  /** Targets kept free of faults while the harness restarts them ({@link hold}). */
  readonly #held: string[] = [];
  #nextId = 0;
  /** Faults begun, by kind. */
  readonly begun: Partial<Record<FaultKind, number>> = {};

  constructor(opts: NemesisOptions) {
    this.#o = opts;
  }

  /** Faults begun and not yet healed. */
  get active(): number {
    return this.#active.size;
  }

  /**
   * Runs one lane of faults (two with `overlap`, the second starting later) until no next
   * fault fits before `endMs` or `signal` aborts; each lane heals its fault before it returns.
   */
  async run(signal: AbortSignal): Promise<void> {
    const lanes = [this.#lane(0, signal)];
    if (this.#o.overlap) lanes.push(this.#lane(1, signal));
    const results = await Promise.allSettled(lanes);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Keeps new faults off replica `target` while `fn` runs: the harness starts a replica that
   * exited unasked again, and a kill or pause of it meanwhile would race that start.
   */
  async hold<T>(target: Replica, fn: () => Promise<T>): Promise<T> {
    const what = targetOf("kill-replica", target);
    this.#held.push(what);
    try {
      return await fn();
    } finally {
      this.#held.splice(this.#held.indexOf(what), 1);
    }
  }

  /** Heals every fault still active (after a failed heal or an abort); throws if one stays. */
  async healAll(): Promise<void> {
    for (const a of [...this.#active.values()]) await this.#heal(a);
  }

  async #lane(lane: number, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 7919 + lane + 1);
    // A deck of every kind, shuffled and dealt in turn: a short run still sees each kind.
    let deck: FaultKind[] = [];
    const first = o.firstDelayMs ?? 10_000;
    // The second lane starts mid-way through the first lane's first fault, so they overlap.
    if (!(await abortableSleep(lane === 0 ? first : first + rng.int(4_000, 9_000), signal))) {
      return;
    }
    while (!signal.aborted) {
      if (deck.length === 0) deck = rng.shuffle([...FAULT_KINDS]);
      const fault = deck.shift()!;
      const target: Replica | undefined = fault.endsWith("-replica")
        ? rng.pick(["a", "b"])
        : undefined;
      const hold = fault === "pause-replica"
        ? Math.round(o.sessionTimeoutMs * 1.5) + rng.int(0, 2_000)
        : rng.int(5_000, 15_000);
      const gap = rng.int(3_000, 8_000);
      const what = targetOf(fault, target);
      const taken = [...[...this.#active.values()].map((a) => a.what), ...this.#held];
      if (taken.some((t) => conflicts(t, what))) {
        // The other lane holds this target: draw again after a short wait.
        if (!(await abortableSleep(1_000, signal))) return;
        continue;
      }
      // Starting a backend again takes a while (Kafka, Unleash: 10–30 s): leave room for it.
      if (o.now() + hold + 5_000 > o.endMs) return;
      const a = await this.#begin(fault, target, what);
      try {
        await abortableSleep(hold, signal);
      } finally {
        await this.#heal(a);
      }
      if (!(await abortableSleep(gap, signal))) return;
    }
  }

  async #begin(fault: FaultKind, target: Replica | undefined, what: string): Promise<Active> {
    const o = this.#o;
    const a: Active = { id: this.#nextId++, fault, target, what };
    // Registered before acting: a heal after an interrupted action still undoes it.
    this.#active.set(a.id, a);
    this.begun[fault] = (this.begun[fault] ?? 0) + 1;
    const t0 = o.now();
    o.log?.(`fault ${a.id}: ${fault}${target ? ` ${target}` : ""}`);
    try {
      if (fault === "kill-replica") await o.cluster.get(target!).kill();
      else if (fault === "pause-replica") o.cluster.get(target!).pause();
      else await stack("stop", BACKEND[fault]!);
    } finally {
      o.history.write<FaultStart>({
        kind: "fault.start",
        t0,
        t1: o.now(),
        fault,
        ...(target ? { target } : {}),
        fault_id: a.id,
      });
    }
    return a;
  }

  /** Heals `a` once: a heal asked for while one is under way waits for that one. */
  #heal(a: Active): Promise<void> {
    if (!this.#active.has(a.id)) return Promise.resolve();
    let healing = this.#healing.get(a.id);
    if (!healing) {
      healing = this.#healOnce(a).finally(() => this.#healing.delete(a.id));
      this.#healing.set(a.id, healing);
    }
    return healing;
  }

  async #healOnce(a: Active): Promise<void> {
    const o = this.#o;
    const t0 = o.now();
    if (a.fault === "kill-replica") await o.cluster.get(a.target!).start();
    else if (a.fault === "pause-replica") o.cluster.get(a.target!).resume();
    else await startBackend(BACKEND[a.fault]!);
    this.#active.delete(a.id);
    o.history.write<FaultEnd>({
      kind: "fault.end",
      t0,
      t1: o.now(),
      fault: a.fault,
      ...(a.target ? { target: a.target } : {}),
      fault_id: a.id,
    });
    o.log?.(`fault ${a.id} healed after ${Math.round(o.now() - t0)} ms`);
  }
}

/** `stack.sh start <svc>` (which waits until it is ready), tried three times. */
async function startBackend(svc: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      return await stack("start", svc);
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}

/** The stack's servers that `stack.sh status` reports down. */
export async function downBackends(): Promise<string[]> {
  const out = await new Deno.Command("bash", {
    args: [new URL("../../scripts/stack.sh", import.meta.url).pathname, "status"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === "down")
    .map((f) => f[0]);
}

/** Starts every stack server that is down (PostgreSQL first: Unleash needs it). */
export async function ensureStackUp(): Promise<void> {
  const down = await downBackends();
  for (const svc of ["postgres", "redis", "zookeeper", "kafka", "unleash"]) {
    if (down.includes(svc)) await startBackend(svc);
  }
}
