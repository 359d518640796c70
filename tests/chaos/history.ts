/**
 * The chaos run's history: one JSON object a line, written as operations complete, read back by
 * the checker alone (`deno task chaos --check FILE`). The workload (tests/chaos/workload.ts) and
 * the nemesis (tests/chaos/nemesis.ts) write it; tests/chaos/checker.ts judges it.
 *
 * Times are milliseconds since the run began (`performance.now()` of the runner), `t0` when the
 * operation was invoked and `t1` when its answer (or failure) was known.
 *
 * Outcomes, as Jepsen names them:
 * - `ok`: the service acknowledged it (a 2xx; for a read, what it answered).
 * - `fail`: it certainly did not happen (a 4xx answer: 404, 409, 412, 400).
 * - `info`: unknown whether it happened (a 5xx, a timeout, a reset connection). A write that ends
 *   `info` may or may not be in the history; the checker accepts either, never requires it.
 */

/** Which service replica answered (the runner starts two: "a" and "b"). */
export type Replica = "a" | "b";

export type Outcome = "ok" | "fail" | "info";

/** Fields every record has. `i` is the record's sequence number in the file (0, 1, …). */
export interface Base {
  i: number;
  t0: number;
  t1: number;
}

/** One configuration scope: every workload key lives in one environment, global scope. */
export interface KeyRef {
  environment: string;
  key: string;
}

/**
 * A configuration write. Every value the workload writes is unique in the run
 * (`{"w": <record i of the invoke>, ...}`), so a value read anywhere names the write.
 * `version` is the version the answer named (ok only). For `cas`, `if_match` is the version sent
 * in `If-Match`. For `rollback`, `to` is the version rolled back to and `value` is that
 * version's value as the workload knew it (may be absent when unknown).
 */
export interface ConfigWrite extends Base, KeyRef {
  kind: "config.write";
  op: "create" | "put" | "cas" | "delete" | "rollback";
  replica: Replica;
  client: number;
  value?: unknown;
  if_match?: number;
  to?: number;
  outcome: Outcome;
  status?: number;
  version?: number;
  error?: string;
}

/** A single-key read (`GET /api/v1/config/{key}`): `absent` for a 404. */
export interface ConfigRead extends Base, KeyRef {
  kind: "config.read";
  replica: Replica;
  client: number;
  outcome: Outcome;
  status?: number;
  version?: number;
  value?: unknown;
  absent?: boolean;
  /** `X-Config-Stale: true` on the answer. */
  stale?: boolean;
  error?: string;
}

/** `POST /api/v1/config/bulk`: the values it answered (no versions; values are unique). */
export interface ConfigBulk extends Base {
  kind: "config.bulk";
  environment: string;
  replica: Replica;
  client: number;
  keys: string[];
  outcome: Outcome;
  status?: number;
  values?: Record<string, unknown>;
  /** `X-Config-Stale: true` on the answer. */
  stale?: boolean;
  error?: string;
}

/** One SSE watcher's (re)connection: `last_event_id` sent, or null on the first. */
export interface SseConnect extends Base {
  kind: "sse.connect";
  watcher: number;
  replica: Replica;
  environment: string;
  last_event_id: string | null;
  outcome: Outcome;
  status?: number;
  error?: string;
}

/** One event a watcher received (`t0 == t1` = when it arrived). */
export interface SseEvent extends Base {
  kind: "sse.event";
  watcher: number;
  replica: Replica;
  environment: string;
  id: string;
  type: string;
  key: string;
  version: number;
}

/** One record the Kafka consumer read from the config or flag topic. */
export interface KafkaEvent extends Base {
  kind: "kafka.event";
  topic: "config" | "flags";
  partition: number;
  offset: string;
  event_id: string;
  type: string;
  key?: string;
  environment?: string;
  version?: number;
}

/** Registry operations. `ttl_seconds` set for TTL instances; `healthy_target` says whether the
 * harness's health endpoint for this instance answers 2xx (health-checked instances). */
export interface RegistryOp extends Base {
  kind: "registry.register" | "registry.deregister" | "registry.heartbeat";
  replica: Replica;
  service: string;
  instance_id: string;
  ttl_seconds?: number;
  /** Registrations only: whether the instance's health endpoint answers 2xx (see above). */
  healthy_target?: boolean;
  outcome: Outcome;
  status?: number;
  error?: string;
}

/** The workload stopped heartbeating a TTL instance at `t0` (it should expire). */
export interface HeartbeatStop extends Base {
  kind: "registry.heartbeat_stop";
  service: string;
  instance_id: string;
}

/** A flag evaluation (`POST /api/v1/feature-flags/evaluate`). */
export interface FlagEval extends Base {
  kind: "flag.eval";
  replica: Replica;
  flag: string;
  outcome: Outcome;
  status?: number;
  value?: unknown;
  reason?: string;
  error?: string;
}

/** Any other request whose availability counts (e.g. `discover`, list reads). */
export interface OtherOp extends Base {
  kind: "other";
  name: string;
  replica: Replica;
  outcome: Outcome;
  status?: number;
  error?: string;
}

export type FaultKind =
  | "kill-replica"
  /** Not a fault of the nemesis: a replica that exited unasked (see {@link ReplicaExit}). */
  | "replica-exit"
  | "pause-replica"
  | "stop-postgres"
  | "stop-redis"
  | "stop-zookeeper"
  | "stop-kafka"
  | "stop-unleash";

/** A fault began (`t0`) / the nemesis healed it (`t1`, in the `fault.end` record). */
export interface FaultStart extends Base {
  kind: "fault.start";
  fault: FaultKind;
  /** The replica for kill/pause faults. */
  target?: Replica;
  fault_id: number;
}

export interface FaultEnd extends Base {
  kind: "fault.end";
  fault: FaultKind;
  target?: Replica;
  fault_id: number;
}

/**
 * A replica exited without being asked (`t0`, when the harness saw it) and was started again
 * (`t1`, when it answered `/live` again; the run's end when it never did). A container's
 * restart policy would do the same; the checker reports each exit as an anomaly.
 */
export interface ReplicaExit extends Base {
  kind: "replica.exit";
  replica: Replica;
  code: number;
  signal: string | null;
  restarted: boolean;
}

/** After recovery: each key read through each replica, and its full history. */
export interface FinalRead extends Base, KeyRef {
  kind: "final.read";
  replica: Replica;
  status: number;
  version?: number;
  value?: unknown;
  absent?: boolean;
}

export interface FinalHistory extends Base, KeyRef {
  kind: "final.history";
  /** Every version of the key, as `GET …/history` lists them (all pages). */
  versions: { version: number; type: string; value?: unknown }[];
}

/** After recovery: a service's instances as ZooKeeper and each replica's `discover` show them. */
export interface FinalRegistry extends Base {
  kind: "final.registry";
  service: string;
  znodes: string[];
  discover: Record<Replica, string[]>;
  /** `GET /api/v1/registry/services/{name}` instance ids with their status, per replica. */
  listed: Record<Replica, Record<string, string>>;
}

/** Run parameters, the first line of every history. */
export interface RunStart extends Base {
  kind: "run.start";
  seed: number;
  duration_s: number;
  overlap: boolean;
  /** Documented bound (ms) within which a write through one replica is read through the other. */
  replica_lag_ms: number;
  /** Grace after a fault's end during which its backend's 503/504 still count as documented. */
  recovery_grace_ms: number;
  environment: string;
  keys: string[];
}

export interface RunEnd extends Base {
  kind: "run.end";
}

export type HistoryRecord =
  | RunStart
  | RunEnd
  | ConfigWrite
  | ConfigRead
  | ConfigBulk
  | SseConnect
  | SseEvent
  | KafkaEvent
  | RegistryOp
  | HeartbeatStop
  | FlagEval
  | OtherOp
  | FaultStart
  | FaultEnd
  | ReplicaExit
  | FinalRead
  | FinalHistory
  | FinalRegistry;

/** Reads a history file (JSON lines; blank lines ignored). */
export async function readHistory(path: string): Promise<HistoryRecord[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/** Appends records as JSON lines, in order, without losing any on a crash of the runner. */
export class HistoryWriter {
  #file: Deno.FsFile;
  #enc = new TextEncoder();
  #next = 0;
  readonly records: HistoryRecord[] = [];

  constructor(path: string) {
    this.#file = Deno.openSync(path, { write: true, create: true, truncate: true });
  }

  /** The next record number (use it as a value's unique `w` before the write is invoked). */
  reserve(): number {
    return this.#next++;
  }

  /** Writes `rec` with sequence number `i` (from `reserve()`), or a fresh one. */
  write<T extends HistoryRecord>(rec: Omit<T, "i"> & { i?: number }): T {
    const full = { ...rec, i: rec.i ?? this.reserve() } as T;
    this.records.push(full);
    this.#file.writeSync(this.#enc.encode(JSON.stringify(full) + "\n"));
    return full;
  }

  close(): void {
    this.#file.close();
  }
}
