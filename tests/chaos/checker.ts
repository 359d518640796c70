/**
 * The chaos run's checker: judges a history (tests/chaos/history.ts) by seven rules and reports
 * operations, faults, anomalies and unavailability. `check()` is pure (no I/O, no clock), so a
 * saved history is judged the same way every time:
 *
 *     deno run -A tests/chaos/checker.ts HISTORY.jsonl [--json OUT]
 *
 * prints the report, writes it as JSON with `--json`, and exits 1 on any anomaly (2 when the
 * history cannot be read).
 *
 * How the rules read the history (decisions that matter for false positives and negatives):
 *
 * - **Identity of values.** Every value the workload writes is unique in the run, so a value
 *   names its write. A rollback copies an older version's value, so one value may stand at
 *   several versions: a value read without a version (bulk) is mapped to every version holding
 *   it, in the final history and in acknowledged answers. Values are compared as JSON with
 *   object members sorted, since PostgreSQL's JSONB does not keep member order.
 * - **Versions** of a key grow with every write (delete included) and never repeat, even across
 *   delete and re-create (docs/api.md), so they are totally ordered and "older" is "smaller".
 * - **A version's birth** is the invoke time of the write that made it (acknowledged: its own
 *   record; unacknowledged: the write whose value it holds, or the earliest `info` delete or
 *   rollback of the key). A read cannot have seen a version born after it completed; this is
 *   what keeps a later delete from excusing an earlier stale 404.
 * - **Observations.** An `ok` single read names one version. A 404 (whatever outcome the
 *   workload gave it: it is an answer) names "absent": version 0 (never created) or any delete
 *   born before the read completed. A bulk read names, per key asked, the versions holding the
 *   value answered, or "absent" when the key is left out.
 *
 * Rule 1 (durability). With the key's final history: every `ok` write's version is there with
 * its type and value; every version there is explained by an `ok` or `info` write (a value no
 * write wrote, a value standing at more versions than writes and rollbacks wrote it, or a delete
 * nobody asked for is an anomaly; `fail` writes explain nothing); every value a read observed is
 * there at the version read, and every version a Kafka or SSE event named is there (an event
 * proves the version was committed); each replica's final read answers the history's last
 * version (404 when that is a delete) and never less than the highest acknowledged one. `info`
 * writes may be present or absent. Without a final history (run ended early) the final reads
 * are judged against acknowledged versions alone, and a missing final history is itself an
 * anomaly.
 *
 * Rule 2 (no going back). Per replica and key, a read invoked after another read completed must
 * not be older (the lowest version the earlier one may have seen against the highest the later
 * one may have seen). A read invoked `replica_lag_ms` after an `ok` write completed, through
 * either replica, or at once through the replica that took the write, must see at least that
 * version. Reads answered stale (`X-Config-Stale`: PostgreSQL down, or the replica could not
 * catch up with the others' change log) are judged the same per replica (the cache is
 * write-through: staleness never permits going back on the replica that answers), but owe
 * nothing to writes acknowledged through the other replica: the header says so (docs/api.md).
 * They are counted apart.
 *
 * Rule 3 (CAS). Two `ok` writes of a key sent with the same `If-Match` version are an anomaly,
 * and so is an `ok` conditional write whose predecessor in the final history is not the version
 * it named (the precondition was not honoured). docs/api.md does not promise versions grow by
 * exactly one (lib/config/model.ts does), so the predecessor is read from the history.
 * Exception: a rollback of a deleted entry, where the service has no current version to compare.
 *
 * Rule 4 (events). Kafka (config topic, deduplicated by `event_id`): every `ok` write invoked
 * after the consumer's start (`run.start`; the consumer reads the topic from its beginning)
 * appears as (key, version); per key, first deliveries in (partition, offset) order have
 * strictly increasing versions on one partition. SSE, per watcher: every `ok` write of its
 * environment invoked after a successful connect without `Last-Event-ID` answered, and
 * completed `sseTailMs` before that stream ended, arrives. A stream lasts through reconnects
 * with `Last-Event-ID` (the service replays what was missed) and ends at the next connect
 * without one, or at the run's end (its last connect succeeded) or first failed reconnect
 * after its last successful one. Per key the versions received never step back (a version
 * received again after a reconnect is fine). A missing version below one received is a gap;
 * above all received ones it is missing.
 *
 * Rule 5 (registry). Expected present: an `ok` register with no `ok`/`info` deregister that
 * could have followed it, and, for TTL instances, a heartbeat (or the register) invoked less than
 * the TTL before the final observation. Present means in the znodes and listed by both
 * replicas; also in `discover` of both replicas when its health target answers (non-TTL with
 * `healthy_target` not false) or when every gap between its acknowledged beats (register, `ok`
 * heartbeats, final observation; widest possible reading) stayed under the TTL. A TTL instance
 * whose last beat (an `info` heartbeat counts: it may have arrived) was more than TTL +
 * `ttlExpiryGraceMs` before the observation must not be in
 * `discover` nor listed healthy (the gap decides, whether or not `registry.heartbeat_stop` was
 * recorded). An instance whose `ok` deregister followed every register
 * attempt must be gone everywhere.
 *
 * Rule 6 (flags). No evaluation answers 5xx or 4xx; an `ok` one has a value and a reason; one
 * with no answer at all is an anomaly unless its replica was killed or paused at the time.
 * Rules 6 and 7 ignore failures completed after `run.end` (the harness stopping its loops).
 *
 * Rule 7 (availability). Each operation needs some backends (see `NEEDS`); a 503/504 or a
 * connection failure is documented when it overlaps a fault window (start to heal plus
 * `recovery_grace_ms`) of a backend it needs or of the replica it asked. Any other 5xx is always
 * an anomaly. Unavailability: per fault window and operation kind (affected: needing its
 * backend, or asking its replica), the longest span from a failure invoked in the window to
 * the next success invoked after it, at most to the window's end plus grace; reported as the
 * maximum per fault kind.
 */
import {
  type ConfigBulk,
  type ConfigRead,
  type ConfigWrite,
  type FaultEnd,
  type FaultKind,
  type FaultStart,
  type FinalHistory,
  type FinalRead,
  type FinalRegistry,
  type FlagEval,
  type HistoryRecord,
  type KafkaEvent,
  type OtherOp,
  readHistory,
  type RegistryOp,
  type Replica,
  type ReplicaExit,
  type RunStart,
  type SseConnect,
  type SseEvent,
} from "./history.ts";

export interface CheckOptions {
  /** Writes completed this long before a watcher's stream ended need not reach it. Default 5000. */
  sseTailMs?: number;
  /** Overrides `run.start.replica_lag_ms` (default 1000 without a run.start). */
  replicaLagMs?: number;
  /** Overrides `run.start.recovery_grace_ms` (default 5000 without a run.start). */
  recoveryGraceMs?: number;
  /** How long past its TTL a silent instance may still be discovered (the sweep's period), ms.
   * Default 5000. */
  ttlExpiryGraceMs?: number;
  /** Whether a Kafka consumer ran; false skips the Kafka part of rule 4. Default true. */
  kafka?: boolean;
}

export type Rule = 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface Anomaly {
  rule: Rule;
  name: string;
  message: string;
  /** The `i` of every record involved. */
  records: number[];
}

export interface OperationCount {
  kind: string;
  ok: number;
  fail: number;
  info: number;
}

export interface FaultSummary {
  fault: FaultKind;
  count: number;
  total_ms: number;
}

export interface Unavailability {
  fault: FaultKind;
  longest_ms: number;
  /** Operation kinds that failed in a window of this fault kind, longest span first. */
  op_kinds: string[];
  /** Longest span per operation kind. */
  by_kind: Record<string, number>;
}

export interface Report {
  operations: OperationCount[];
  faults: FaultSummary[];
  anomalies: Anomaly[];
  unavailability: Unavailability[];
  ok: boolean;
}

export const RULE_NAMES: Record<Rule, string> = {
  1: "durability",
  2: "monotonic reads",
  3: "compare-and-set",
  4: "events",
  5: "registry",
  6: "flags",
  7: "availability",
};

type Backend = "postgres" | "redis" | "zookeeper" | "kafka" | "unleash";

/**
 * Backends each operation kind's answer needs. Config reads are answered from cache when the
 * store is down, so a 503 read is documented only in a PostgreSQL outage; flag evaluations need
 * nothing (rule 6 judges them); `other` operations (discover, lists) are allowed the two
 * backends whose outage the registry and the config list document as a 503.
 */
const NEEDS: Record<string, Backend[]> = {
  "config.write": ["postgres"],
  "config.read": ["postgres"],
  "config.bulk": ["postgres"],
  "sse.connect": ["postgres"],
  "registry.register": ["postgres", "zookeeper"],
  "registry.deregister": ["postgres", "zookeeper"],
  "registry.heartbeat": ["postgres", "zookeeper"],
  "flag.eval": [],
  other: ["postgres", "zookeeper"],
};

const BACKEND_OF: Partial<Record<FaultKind, Backend>> = {
  "stop-postgres": "postgres",
  "stop-redis": "redis",
  "stop-zookeeper": "zookeeper",
  "stop-kafka": "kafka",
  "stop-unleash": "unleash",
};

/** How long before the harness saw a replica's exit the process may have ended, ms. */
const EXIT_SEEN_MS = 250;

/** An operation with an outcome (what rule 7 and the operation table look at). */
type Op = ConfigWrite | ConfigRead | ConfigBulk | SseConnect | RegistryOp | FlagEval | OtherOp;

interface Window {
  fault: FaultKind;
  target?: Replica;
  backend?: Backend;
  start: number;
  /** When the nemesis healed it (run end when it never did). */
  end: number;
  records: number[];
}

/** The history indexed for the rules. */
interface Index {
  run?: RunStart;
  runEnd: number;
  /** `run.end`'s time, Infinity without one: failures after it are the harness stopping. */
  stopped: number;
  lag: number;
  grace: number;
  sseTail: number;
  ttlGrace: number;
  kafka: boolean;
  ops: Op[];
  keys: Map<string, KeyModel>;
  reads: ConfigRead[];
  bulks: ConfigBulk[];
  finalReads: FinalRead[];
  sse: Map<number, (SseConnect | SseEvent)[]>;
  kafkaEvents: KafkaEvent[];
  registry: RegistryOp[];
  finalRegistry: Map<string, FinalRegistry>;
  flags: FlagEval[];
  /** Fault windows, and one per replica that exited unasked (`replica-exit`). */
  windows: Window[];
  exits: ReplicaExit[];
}

type Change = "create" | "update" | "delete" | "rollback";

interface Version {
  change: Change;
  /** Canonical JSON of the value; undefined for a delete. */
  value?: string;
}

/** Everything known about one key (`environment/key`). */
interface KeyModel {
  id: string;
  writes: ConfigWrite[];
  history?: FinalHistory;
  /** Final history by version. */
  versions: Map<number, Version>;
  /** Canonical value → versions holding it (final history and acknowledged answers). */
  byValue: Map<string, Set<number>>;
  /** Version → earliest time it could have existed (see "A version's birth" above). */
  born: Map<number, number>;
  deleted: number[];
  /** Write record `i` → the canonical value it wrote, when known (not for deletes). */
  written: Map<number, string>;
  /** Canonical value → the writes (any outcome) that wrote it. */
  writers: Map<string, ConfigWrite[]>;
}

const keyId = (environment: string, key: string) => `${environment}/${key}`;

/** JSON with object members sorted, so equal values compare equal whatever their member order. */
export function canon(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
        : x,
  ) ?? "undefined";
}

function changeOf(op: ConfigWrite["op"]): Change {
  return op === "put" || op === "cas" ? "update" : op;
}

/** History `type` (`created`, `updated`, `deleted`, `rolled_back`) as a change. */
function changeOfType(type: string): Change | undefined {
  const t = type.toLowerCase();
  if (t.startsWith("create")) return "create";
  if (t.startsWith("update")) return "update";
  if (t.startsWith("delete")) return "delete";
  if (t.startsWith("roll")) return "rollback";
  return undefined;
}

function isOp(r: HistoryRecord): r is Op {
  return "outcome" in r;
}

/** No answer from the service, or a 5xx: the operation found the service unavailable. */
function unavailable(op: Op): boolean {
  return op.status !== undefined ? op.status >= 500 : op.outcome !== "ok";
}

function opLabel(op: Op): string {
  if (op.kind === "config.write") return `config.write ${op.op}`;
  if (op.kind === "other") return `other ${op.name}`;
  return op.kind;
}

function describe(op: Op | FinalRead): string {
  const what = op.kind === "config.write"
    ? `${op.op} ${op.key}`
    : op.kind === "config.read" || op.kind === "final.read"
    ? `read ${op.key}`
    : op.kind === "registry.register" || op.kind === "registry.deregister" ||
        op.kind === "registry.heartbeat"
    ? `${op.kind.slice(9)} ${op.service}/${op.instance_id}`
    : op.kind === "flag.eval"
    ? `evaluate ${op.flag}`
    : op.kind === "other"
    ? op.name
    : op.kind;
  return `${what} via ${op.replica} (#${op.i}, ${Math.round(op.t0)}–${Math.round(op.t1)} ms)`;
}

// ---------------------------------------------------------------------------------------------
// Indexing

function index(records: HistoryRecord[], opts: CheckOptions): Index {
  const run = records.find((r): r is RunStart => r.kind === "run.start");
  const end = records.find((r) => r.kind === "run.end");
  const runEnd = end?.t0 ?? records.reduce((m, r) => Math.max(m, r.t1), 0);
  const h: Index = {
    run,
    runEnd,
    stopped: end?.t0 ?? Infinity,
    lag: opts.replicaLagMs ?? run?.replica_lag_ms ?? 1000,
    grace: opts.recoveryGraceMs ?? run?.recovery_grace_ms ?? 5000,
    sseTail: opts.sseTailMs ?? 5000,
    ttlGrace: opts.ttlExpiryGraceMs ?? 5000,
    kafka: opts.kafka ?? true,
    ops: [],
    keys: new Map(),
    reads: [],
    bulks: [],
    finalReads: [],
    sse: new Map(),
    kafkaEvents: [],
    registry: [],
    finalRegistry: new Map(),
    flags: [],
    windows: [],
    exits: [],
  };
  const key = (environment: string, k: string): KeyModel => {
    const id = keyId(environment, k);
    let m = h.keys.get(id);
    if (!m) {
      m = {
        id,
        writes: [],
        versions: new Map(),
        byValue: new Map(),
        born: new Map(),
        deleted: [],
        written: new Map(),
        writers: new Map(),
      };
      h.keys.set(id, m);
    }
    return m;
  };
  const starts = new Map<number, FaultStart>();
  const ends = new Map<number, FaultEnd>();
  for (const r of records) {
    if (isOp(r)) h.ops.push(r);
    switch (r.kind) {
      case "config.write":
        key(r.environment, r.key).writes.push(r);
        break;
      case "config.read":
        h.reads.push(r);
        key(r.environment, r.key);
        break;
      case "config.bulk":
        h.bulks.push(r);
        for (const k of r.keys) key(r.environment, k);
        break;
      case "final.read":
        h.finalReads.push(r);
        key(r.environment, r.key);
        break;
      case "final.history":
        key(r.environment, r.key).history = r;
        break;
      case "sse.connect":
      case "sse.event": {
        const list = h.sse.get(r.watcher) ?? [];
        list.push(r);
        h.sse.set(r.watcher, list);
        break;
      }
      case "kafka.event":
        h.kafkaEvents.push(r);
        break;
      case "registry.register":
      case "registry.deregister":
      case "registry.heartbeat":
        h.registry.push(r);
        break;
      case "final.registry":
        h.finalRegistry.set(r.service, r);
        break;
      case "flag.eval":
        h.flags.push(r);
        break;
      case "fault.start":
        starts.set(r.fault_id, r);
        break;
      case "fault.end":
        ends.set(r.fault_id, r);
        break;
      case "replica.exit":
        // Requests through it fail from the moment it ended, which the harness sees a moment
        // later: the window opens EXIT_SEEN_MS before.
        h.exits.push(r);
        h.windows.push({
          fault: "replica-exit",
          target: r.replica,
          start: r.t0 - EXIT_SEEN_MS,
          end: r.t1,
          records: [r.i],
        });
        break;
    }
  }
  for (const [id, s] of starts) {
    const e = ends.get(id);
    h.windows.push({
      fault: s.fault,
      target: s.target,
      backend: BACKEND_OF[s.fault],
      start: s.t0,
      end: e ? e.t1 : runEnd,
      records: e ? [s.i, e.i] : [s.i],
    });
  }
  h.windows.sort((a, b) => a.start - b.start);
  for (const m of h.keys.values()) modelKey(m);
  return h;
}

/** Fills a key's version map, written values, value map and version births. */
function modelKey(m: KeyModel): void {
  for (const e of m.history?.versions ?? []) {
    const change = changeOfType(e.type);
    if (!change) continue;
    m.versions.set(e.version, { change, value: change === "delete" ? undefined : canon(e.value) });
  }
  for (const w of m.writes) {
    // A rollback's value: as the workload knew it, else what the history holds at its target.
    const value = w.op === "delete"
      ? undefined
      : w.value !== undefined
      ? canon(w.value)
      : w.op === "rollback" && w.to !== undefined
      ? m.versions.get(w.to)?.value
      : undefined;
    if (value === undefined) continue;
    m.written.set(w.i, value);
    m.writers.set(value, [...m.writers.get(value) ?? [], w]);
  }
  const addValue = (value: string, v: number) => {
    const set = m.byValue.get(value) ?? new Set();
    set.add(v);
    m.byValue.set(value, set);
  };
  const earliest = (ws: ConfigWrite[]) =>
    ws.reduce((min, w) => w.outcome === "fail" ? min : Math.min(min, w.t0), Infinity);
  const firstDelete = earliest(m.writes.filter((w) => w.op === "delete"));
  const firstRollback = earliest(m.writes.filter((w) => w.op === "rollback"));
  for (const w of m.writes) {
    if (w.outcome !== "ok" || w.version === undefined) continue;
    m.born.set(w.version, w.t0);
    const value = m.written.get(w.i);
    if (value !== undefined) addValue(value, w.version);
    if (w.op === "delete") m.deleted.push(w.version);
  }
  for (const [v, e] of m.versions) {
    if (e.value !== undefined) addValue(e.value, v);
    if (e.change === "delete" && !m.born.has(v)) m.deleted.push(v);
    if (m.born.has(v)) continue;
    const t = e.change === "delete"
      ? firstDelete
      : e.change === "rollback"
      ? firstRollback
      : earliest((m.writers.get(e.value!) ?? []).filter((w) => w.op !== "rollback"));
    m.born.set(v, Number.isFinite(t) ? t : 0);
  }
  m.deleted.sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// Rule 1: acknowledged writes survive, nothing else appears

function checkDurability(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  const a = (name: string, message: string, records: number[]) =>
    out.push({ rule: 1, name, message, records });
  const finals = groupBy(h.finalReads, (r) => keyId(r.environment, r.key));
  for (const m of h.keys.values()) {
    const acked = m.writes.filter((w) => w.outcome === "ok" && w.version !== undefined);
    if (!m.history) {
      if (acked.length) {
        a(
          "missing-final-history",
          `${m.id}: no final history, so ${acked.length} acknowledged writes cannot be confirmed`,
          [],
        );
      }
    } else {
      checkHistory(m, acked, a);
    }
    checkFinalReads(m, acked, finals.get(m.id) ?? [], a);
  }
  // An event is evidence that its version was committed: the history must still hold it.
  const events = [
    ...h.kafkaEvents.filter((e) => e.topic === "config"),
    ...[...h.sse.values()].flat().filter((e): e is SseEvent => e.kind === "sse.event"),
  ];
  for (const e of events) {
    if (e.key === undefined || e.version === undefined) continue;
    const m = h.keys.get(keyId(e.environment ?? h.run?.environment ?? "", e.key));
    if (!m?.history || m.versions.has(e.version)) continue;
    a(
      "event-version-lost",
      `${m.id}: ${e.kind} #${e.i} names version ${e.version}, which the final history lacks`,
      [e.i, m.history.i],
    );
  }
  for (const r of h.reads) {
    const m = h.keys.get(keyId(r.environment, r.key))!;
    if (r.outcome !== "ok" || r.absent || r.version === undefined) continue;
    checkObservedValue(m, r, r.version, r.value, a);
  }
  const held = new Map<KeyModel, Set<string | undefined>>();
  for (const b of h.bulks) {
    if (b.outcome !== "ok" || !b.values) continue;
    for (const [k, value] of Object.entries(b.values)) {
      const m = h.keys.get(keyId(b.environment, k));
      if (!m) continue;
      const seen = canon(value);
      if (m.history) {
        if (!held.has(m)) held.set(m, new Set([...m.versions.values()].map((e) => e.value)));
        if (held.get(m)!.has(seen)) continue;
      } else if (m.writers.has(seen)) continue;
      a(
        m.history ? "observed-value-lost" : "unknown-value-read",
        `${m.id}: bulk read #${b.i} via ${b.replica} answered ${seen}, which ${
          m.history ? "no version of the final history holds" : "no write wrote"
        }`,
        [b.i, ...(m.history ? [m.history.i] : [])],
      );
    }
  }
  return out;
}

function checkHistory(
  m: KeyModel,
  acked: ConfigWrite[],
  a: (name: string, message: string, records: number[]) => void,
): void {
  const hi = m.history!.i;
  for (const w of acked) {
    const e = m.versions.get(w.version!);
    if (!e) {
      a(
        "lost-write",
        `${m.id}: acknowledged ${describe(w)} → version ${w.version} is not in the final history`,
        [w.i, hi],
      );
      continue;
    }
    const value = m.written.get(w.i);
    if (e.change !== changeOf(w.op) || (value !== undefined && e.value !== value)) {
      a(
        "changed-value",
        `${m.id}: acknowledged ${describe(w)} wrote version ${w.version} as ${changeOf(w.op)} ${
          value ?? ""
        }, the final history has ${e.change} ${e.value ?? ""}`,
        [w.i, hi],
      );
    }
  }
  // Every version must be some write's doing: count, per value, the versions holding it
  // against the writes (ok or info) that wrote it, rollbacks included.
  const holders = new Map<string, number[]>();
  const deletes: number[] = [];
  for (const [v, e] of m.versions) {
    if (e.value === undefined) deletes.push(v);
    else holders.set(e.value, [...holders.get(e.value) ?? [], v]);
  }
  for (const [value, versions] of holders) {
    const writers = (m.writers.get(value) ?? []).filter((w) => w.outcome !== "fail");
    const ok = writers.filter((w) => w.outcome === "ok" && w.version !== undefined);
    const unexplained = versions.filter((v) => !ok.some((w) => w.version === v));
    const spare = writers.length - (versions.length - unexplained.length);
    if (unexplained.length <= spare) continue;
    const failed = (m.writers.get(value) ?? []).filter((w) => w.outcome === "fail");
    a(
      writers.length === 0 ? "unknown-value" : "duplicated-value",
      `${m.id}: version(s) ${versions.join(", ")} hold ${value}, ${
        writers.length === 0
          ? failed.length ? "which only a write answered 4xx wrote" : "which no write wrote"
          : `written by only ${writers.length} write(s)`
      }`,
      [hi, ...writers.map((w) => w.i), ...failed.map((w) => w.i)],
    );
  }
  const deleters = m.writes.filter((w) => w.op === "delete" && w.outcome !== "fail");
  if (deletes.length > deleters.length) {
    a(
      "unknown-delete",
      `${m.id}: the final history has ${deletes.length} deletes (versions ${
        deletes.join(", ")
      }) but only ${deleters.length} delete(s) were sent`,
      [hi, ...deleters.map((w) => w.i)],
    );
  }
}

function checkFinalReads(
  m: KeyModel,
  acked: ConfigWrite[],
  finals: FinalRead[],
  a: (name: string, message: string, records: number[]) => void,
): void {
  const top = acked.reduce<ConfigWrite | undefined>(
    (best, w) => (!best || w.version! > best.version!) ? w : best,
    undefined,
  );
  const lastVersion = m.history ? Math.max(0, ...m.versions.keys()) : undefined;
  const last = lastVersion ? m.versions.get(lastVersion) : undefined;
  if (top) {
    for (const replica of ["a", "b"] as const) {
      if (!finals.some((r) => r.replica === replica)) {
        a("missing-final-read", `${m.id}: no final read through ${replica}`, [top.i]);
      }
    }
  }
  for (const r of finals) {
    const ids = [r.i, ...(top ? [top.i] : []), ...(m.history ? [m.history.i] : [])];
    if (r.status !== 200 && r.status !== 404) {
      a("final-read-failed", `${m.id}: final ${describe(r)} answered ${r.status}`, ids);
      continue;
    }
    if (r.status === 404 || r.absent) {
      const explained = m.history
        ? !last || last.change === "delete"
        : !top || top.op === "delete" ||
          m.writes.some((w) => w.op === "delete" && w.outcome === "info");
      if (!explained) {
        a(
          "final-read-stale",
          `${m.id}: final ${describe(r)} answered 404, but ${
            m.history
              ? `the history ends with ${last?.change} version ${lastVersion}`
              : `${describe(top!)} acknowledged version ${top!.version}`
          }`,
          ids,
        );
      }
      continue;
    }
    const v = r.version ?? 0;
    if ((top && v < top.version!) || (lastVersion !== undefined && v < lastVersion)) {
      a(
        "final-read-stale",
        `${m.id}: final ${describe(r)} answered version ${v}, the newest is ${
          Math.max(top?.version ?? 0, lastVersion ?? 0)
        }`,
        ids,
      );
    } else if (last && lastVersion === v && last.change === "delete") {
      a("final-read-stale", `${m.id}: final ${describe(r)} answered a deleted version ${v}`, ids);
    }
    checkObservedValue(m, r, v, r.value, a);
  }
}

/** A read that names a version must agree with the final history about that version. */
function checkObservedValue(
  m: KeyModel,
  r: ConfigRead | FinalRead,
  version: number,
  value: unknown,
  a: (name: string, message: string, records: number[]) => void,
): void {
  if (!m.history) return;
  const e = m.versions.get(version);
  const seen = canon(value);
  if (!e) {
    a(
      "observed-value-lost",
      `${m.id}: ${
        describe(r)
      } answered version ${version} = ${seen}, which the final history lacks`,
      [r.i, m.history.i],
    );
  } else if (value !== undefined && e.value !== seen) {
    a(
      "read-value-mismatch",
      `${m.id}: ${describe(r)} answered version ${version} = ${seen}, the final history has ${
        e.value ?? e.change
      }`,
      [r.i, m.history.i],
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Rule 2: reads never go back

/** One read's view of a key: the versions it may have seen, lowest and highest. */
interface Observation {
  i: number;
  replica: Replica;
  t0: number;
  t1: number;
  lo: number;
  hi: number;
  what: string;
  /** Answered with `X-Config-Stale`. */
  stale?: boolean;
}

/** Highest value among entries at or before a time, by binary search over sorted prefixes. */
class MaxBefore {
  #times: number[] = [];
  #best: { v: number; i: number }[] = [];

  constructor(entries: { t: number; v: number; i: number }[]) {
    entries.sort((a, b) => a.t - b.t);
    let best = { v: -Infinity, i: -1 };
    for (const e of entries) {
      if (e.v > best.v) best = { v: e.v, i: e.i };
      this.#times.push(e.t);
      this.#best.push(best);
    }
  }

  /** The highest entry with time < t (`strict`) or ≤ t. */
  at(t: number, strict = false): { v: number; i: number } | undefined {
    let lo = 0, hi = this.#times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? this.#times[mid] < t : this.#times[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.#best[lo - 1];
  }
}

function observations(h: Index): Map<string, Observation[]> {
  const out = new Map<string, Observation[]>();
  const push = (id: string, o: Observation) => {
    const list = out.get(id);
    if (list) list.push(o);
    else out.set(id, [o]);
  };
  const absent = (m: KeyModel, t1: number) =>
    Math.max(0, ...m.deleted.filter((v) => (m.born.get(v) ?? 0) <= t1));
  for (const r of h.reads) {
    const m = h.keys.get(keyId(r.environment, r.key))!;
    const base = { i: r.i, replica: r.replica, t0: r.t0, t1: r.t1 };
    if (r.absent || r.status === 404) {
      push(m.id, { ...base, lo: 0, hi: absent(m, r.t1), what: "404" });
    } else if (r.outcome === "ok" && r.version !== undefined) {
      push(m.id, {
        ...base,
        lo: r.version,
        hi: r.version,
        what: `version ${r.version}${r.stale ? " (stale)" : ""}`,
        stale: r.stale === true,
      });
    }
  }
  for (const b of h.bulks) {
    if (b.outcome !== "ok" || !b.values) continue;
    for (const k of b.keys) {
      const m = h.keys.get(keyId(b.environment, k))!;
      const base = { i: b.i, replica: b.replica, t0: b.t0, t1: b.t1, stale: b.stale === true };
      if (!(k in b.values)) {
        push(m.id, { ...base, lo: 0, hi: absent(m, b.t1), what: "absent from a bulk read" });
        continue;
      }
      const all = [...m.byValue.get(canon(b.values[k])) ?? []];
      if (!all.length) continue; // rule 1 reports a value no write wrote
      const born = all.filter((v) => (m.born.get(v) ?? 0) <= b.t1);
      const vs = born.length ? born : all;
      push(m.id, {
        ...base,
        lo: Math.min(...vs),
        hi: Math.max(...vs),
        what: `the value of version ${vs.join("/")} in a bulk read`,
      });
    }
  }
  return out;
}

function checkReads(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  for (const [id, obs] of observations(h)) {
    const m = h.keys.get(id)!;
    const acked = m.writes.filter((w) => w.outcome === "ok" && w.version !== undefined);
    const anyReplica = new MaxBefore(
      acked.map((w) => ({ t: w.t1 + h.lag, v: w.version!, i: w.i })),
    );
    const byReplica = new Map<Replica, MaxBefore>();
    const readsBefore = new Map<Replica, MaxBefore>();
    for (const replica of ["a", "b"] as const) {
      byReplica.set(
        replica,
        new MaxBefore(
          acked.filter((w) => w.replica === replica).map((w) => ({
            t: w.t1,
            v: w.version!,
            i: w.i,
          })),
        ),
      );
      readsBefore.set(
        replica,
        new MaxBefore(
          obs.filter((o) => o.replica === replica).map((o) => ({ t: o.t1, v: o.lo, i: o.i })),
        ),
      );
    }
    for (const o of obs) {
      // An answer marked stale (`X-Config-Stale`: the store is unreachable, or this replica
      // could not catch up with the others) promises nothing about other replicas' writes.
      const written = [
        o.stale ? undefined : anyReplica.at(o.t0),
        byReplica.get(o.replica)!.at(o.t0),
      ]
        .filter((x) => x !== undefined)
        .reduce<{ v: number; i: number } | undefined>((b, x) => !b || x.v > b.v ? x : b, undefined);
      const read = readsBefore.get(o.replica)!.at(o.t0, true);
      if (written && o.hi < written.v && (!read || written.v >= read.v)) {
        out.push({
          rule: 2,
          name: "read-your-writes",
          message: `${id}: read #${o.i} via ${o.replica} (${Math.round(o.t0)} ms) saw ${o.what}, ` +
            `older than version ${written.v} acknowledged by #${written.i} before it`,
          records: [written.i, o.i],
        });
      } else if (read && o.hi < read.v) {
        out.push({
          rule: 2,
          name: "stale-read",
          message: `${id}: read #${o.i} via ${o.replica} (${Math.round(o.t0)} ms) saw ${o.what}, ` +
            `older than version ${read.v} read through the same replica by #${read.i} before it`,
          records: [read.i, o.i],
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rule 3: compare-and-set

function checkCas(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  for (const m of h.keys.values()) {
    const conditional = m.writes.filter((w) => w.outcome === "ok" && w.if_match !== undefined);
    for (const [ifMatch, ws] of groupBy(conditional, (w) => w.if_match!)) {
      if (ws.length < 2) continue;
      out.push({
        rule: 3,
        name: "double-cas",
        message: `${m.id}: ${ws.length} writes acknowledged from If-Match version ${ifMatch}: ${
          ws.map(describe).join("; ")
        }`,
        records: ws.map((w) => w.i),
      });
    }
    if (!m.history) continue;
    const sorted = [...m.versions.keys()].sort((a, b) => a - b);
    const previous = new Map(sorted.map((v, k) => [v, sorted[k - 1]]));
    for (const w of conditional) {
      if (w.version === undefined || !m.versions.has(w.version)) continue; // rule 1's
      const before = previous.get(w.version);
      if (before === w.if_match) continue;
      if (
        w.op === "rollback" && before !== undefined && m.versions.get(before)!.change === "delete"
      ) {
        continue;
      }
      out.push({
        rule: 3,
        name: "cas-precondition",
        message: `${m.id}: ${describe(w)} was acknowledged from If-Match ${w.if_match} as ` +
          `version ${w.version}, but the version before it is ${before ?? "none"}`,
        records: [w.i, m.history.i],
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rule 4: every acknowledged change reaches Kafka and every watcher, in order

function checkKafka(h: Index): Anomaly[] {
  if (!h.kafka) return [];
  const out: Anomaly[] = [];
  const since = h.run?.t0 ?? 0;
  const first = new Map<string, KafkaEvent>();
  const position = (e: KafkaEvent): [number, bigint] => [e.partition, BigInt(e.offset)];
  const before = (x: KafkaEvent, y: KafkaEvent) => {
    const [px, ox] = position(x), [py, oy] = position(y);
    return px !== py ? px < py : ox < oy;
  };
  for (const e of h.kafkaEvents) {
    if (e.topic !== "config") continue;
    const seen = first.get(e.event_id);
    if (!seen || before(e, seen)) first.set(e.event_id, e);
  }
  const events = [...first.values()].filter((e) => e.key !== undefined && e.version !== undefined);
  const delivered = new Set(
    events.map((e) => `${keyId(e.environment ?? h.run?.environment ?? "", e.key!)}#${e.version}`),
  );
  const expected = [...h.keys.values()].flatMap((m) =>
    m.writes.filter((w) => w.outcome === "ok" && w.version !== undefined && w.t0 >= since)
  );
  if (events.length === 0 && expected.length > 0) {
    return [{
      rule: 4,
      name: "kafka-missing",
      message: `no config event was consumed from Kafka, ${expected.length} writes acknowledged`,
      records: expected.slice(0, 20).map((w) => w.i),
    }];
  }
  for (const w of expected) {
    if (delivered.has(`${keyId(w.environment, w.key)}#${w.version}`)) continue;
    out.push({
      rule: 4,
      name: "kafka-missing",
      message:
        `${keyId(w.environment, w.key)}: acknowledged ${describe(w)} → version ${w.version} ` +
        `never appeared on Kafka`,
      records: [w.i],
    });
  }
  const byKey = groupBy(events, (e) => keyId(e.environment ?? h.run?.environment ?? "", e.key!));
  for (const [id, es] of byKey) {
    es.sort((x, y) => before(x, y) ? -1 : 1);
    const partitions = new Set(es.map((e) => e.partition));
    if (partitions.size > 1) {
      out.push({
        rule: 4,
        name: "kafka-order",
        message: `${id}: events on ${partitions.size} partitions (${
          [...partitions].join(", ")
        }), so their order is not kept`,
        records: es.map((e) => e.i),
      });
    }
    for (let k = 1; k < es.length; k++) {
      if (es[k].version! > es[k - 1].version!) continue;
      out.push({
        rule: 4,
        name: "kafka-order",
        message: `${id}: version ${es[k].version} at ${es[k].partition}:${es[k].offset} after ` +
          `version ${es[k - 1].version} at ${es[k - 1].partition}:${es[k - 1].offset}`,
        records: [es[k - 1].i, es[k].i],
      });
    }
  }
  return out;
}

/**
 * A watcher's unbroken streams: each starts at a successful connect without `Last-Event-ID`
 * (nothing before it can be replayed) and lasts through its resumptions, until the next
 * connect without an id (continuity lost), or, for the last one, until the run ended (its last
 * connect succeeded) or the first failed reconnect after its last successful one.
 */
function streamEpochs(
  connects: SseConnect[],
  runEnd: number,
): { connect: SseConnect; end: number }[] {
  const out: { connect: SseConnect; end: number }[] = [];
  for (const c of connects) {
    if (c.last_event_id !== null) continue;
    if (out.length && out.at(-1)!.end > c.t0) out.at(-1)!.end = c.t0;
    if (c.outcome === "ok") out.push({ connect: c, end: runEnd });
  }
  const last = out.at(-1);
  if (last) {
    const lastOk = connects.filter((c) => c.outcome === "ok").at(-1)!;
    const broken = connects.find((c) => c.outcome !== "ok" && c.t0 > lastOk.t0);
    if (broken && broken.t0 > last.connect.t0) last.end = Math.min(last.end, broken.t0);
  }
  return out;
}

function checkSse(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  for (const [watcher, recs] of h.sse) {
    recs.sort((x, y) => x.t0 - y.t0 || x.i - y.i);
    const connects = recs.filter((r): r is SseConnect => r.kind === "sse.connect");
    const events = recs.filter((r): r is SseEvent => r.kind === "sse.event");
    const epochs = streamEpochs(connects, h.runEnd);
    if (!epochs.length) continue;
    const env = epochs[0].connect.environment;
    const got = new Map<string, Map<number, SseEvent>>();
    const newestOf = new Map<string, SseEvent>();
    for (const e of events) {
      if (e.environment !== env) continue;
      const id = keyId(env, e.key);
      const vs = got.get(id) ?? new Map<number, SseEvent>();
      got.set(id, vs);
      if (vs.has(e.version)) continue; // delivered again after a reconnect: fine
      const newest = newestOf.get(id);
      if (!newest || e.version > newest.version) newestOf.set(id, e);
      else {
        out.push({
          rule: 4,
          name: "sse-order",
          message: `${id}: watcher ${watcher} received version ${e.version} (#${e.i}) after ` +
            `version ${newest.version} (#${newest.i})`,
          records: [newest.i, e.i],
        });
      }
      vs.set(e.version, e);
    }
    for (const m of h.keys.values()) {
      if (!m.id.startsWith(`${env}/`)) continue;
      const vs = got.get(m.id) ?? new Map<number, SseEvent>();
      for (const w of m.writes) {
        if (w.outcome !== "ok" || w.version === undefined || vs.has(w.version)) continue;
        const epoch = epochs.find((e) => w.t0 >= e.connect.t1 && w.t1 <= e.end - h.sseTail);
        if (!epoch) continue;
        const received = [...vs.values()];
        const after = received.filter((e) => e.version > w.version!)
          .sort((x, y) => x.version - y.version)[0];
        const prior = received.filter((e) => e.version < w.version!)
          .sort((x, y) => y.version - x.version)[0];
        const reconnect = after &&
          connects.find((c) =>
            c.outcome === "ok" && c.t0 > (prior?.t0 ?? epoch.connect.t1) && c.t0 < after.t0
          );
        out.push({
          rule: 4,
          name: after ? "sse-gap" : "sse-missing",
          message: `${m.id}: watcher ${watcher} never received version ${w.version} of ` +
            `${describe(w)}` +
            (after
              ? `, yet received version ${after.version} (#${after.i})${
                reconnect ? ` after reconnecting (#${reconnect.i})` : ""
              }`
              : ""),
          records: [w.i, ...(after ? [after.i] : []), ...(reconnect ? [reconnect.i] : [])],
        });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rule 5: registrations survive, TTLs expire only when heartbeats stop

function checkRegistry(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  const a = (name: string, message: string, records: number[]) =>
    out.push({ rule: 5, name, message, records });
  const byInstance = groupBy(h.registry, (r) => `${r.service}/${r.instance_id}`);
  for (const [id, ops] of byInstance) {
    const { service, instance_id } = ops[0];
    const fin = h.finalRegistry.get(service);
    const registers = ops.filter((o) => o.kind === "registry.register" && o.outcome !== "fail");
    const lastOk = registers.filter((o) => o.outcome === "ok").sort((x, y) => x.t0 - y.t0).at(-1);
    const deregisters = ops.filter((o) => o.kind === "registry.deregister");
    const okDereg = deregisters.filter((o) => o.outcome === "ok").sort((x, y) => x.t0 - y.t0)
      .at(-1);
    const lastAttempt = Math.max(-Infinity, ...registers.map((o) => o.t1));
    if (okDereg && okDereg.t0 > lastAttempt) {
      const where = fin ? placesOf(fin, instance_id) : [];
      if (where.length) {
        a(
          "zombie-instance",
          `${id}: deregistered by #${okDereg.i} after every registration, still in ${
            where.join(", ")
          }`,
          [okDereg.i, ...(fin ? [fin.i] : [])],
        );
      }
      continue;
    }
    if (!lastOk) continue;
    if (deregisters.some((d) => d.outcome !== "fail" && d.t1 >= lastOk.t0)) continue;
    const ids = [lastOk.i, ...(fin ? [fin.i] : [])];
    if (!fin) {
      a("lost-registration", `${id}: registered by #${lastOk.i}, no final registry view`, ids);
      continue;
    }
    const ttl = lastOk.ttl_seconds ? lastOk.ttl_seconds * 1000 : undefined;
    let mustDiscover = lastOk.healthy_target !== false;
    if (ttl !== undefined) {
      const tries = [
        lastOk,
        ...ops.filter((o) =>
          o.kind === "registry.heartbeat" && o.outcome !== "fail" && o.t0 >= lastOk.t0 &&
          o.t0 <= fin.t1
        ),
      ].sort((x, y) => x.t0 - y.t0);
      const beats = tries.filter((o) => o.outcome === "ok");
      const last = beats.at(-1)!;
      // Expiry is certain only if not even an unacknowledged heartbeat may have reached it.
      const lastTry = tries.at(-1)!;
      if (fin.t0 - lastTry.t1 > ttl + h.ttlGrace) {
        const seen = (["a", "b"] as const).filter((r) =>
          fin.discover[r].includes(instance_id) || fin.listed[r][instance_id] === "healthy"
        );
        if (seen.length) {
          a(
            "ttl-not-expired",
            `${id}: last heartbeat #${lastTry.i} at ${
              Math.round(lastTry.t1)
            } ms, TTL ${ttl} ms, yet ` +
              `still healthy through ${seen.join(", ")} at ${Math.round(fin.t0)} ms`,
            [lastTry.i, fin.i],
          );
        }
        continue;
      }
      if (fin.t1 - last.t0 >= ttl) continue; // may have expired: neither way is wrong
      const gaps = beats.slice(1).map((b, k) => b.t1 - beats[k].t0);
      mustDiscover = gaps.every((g) => g < ttl);
    }
    const missing = [
      ...(fin.znodes.includes(instance_id) ? [] : ["znodes"]),
      ...(["a", "b"] as const).filter((r) => !(instance_id in fin.listed[r])).map((r) =>
        `listed by ${r}`
      ),
      ...(mustDiscover
        ? (["a", "b"] as const).filter((r) => !fin.discover[r].includes(instance_id)).map((r) =>
          `discover on ${r}`
        )
        : []),
    ];
    if (!missing.length) continue;
    const onlyDiscover = missing.every((w) => w.startsWith("discover"));
    a(
      ttl !== undefined && onlyDiscover ? "ttl-expired-early" : "lost-registration",
      `${id}: registered by #${lastOk.i}${
        ttl !== undefined ? ` and heartbeating within its TTL (${ttl} ms)` : ""
      }, missing from ${missing.join(", ")}`,
      ids,
    );
  }
  return out;
}

function placesOf(fin: FinalRegistry, instance: string): string[] {
  return [
    ...(fin.znodes.includes(instance) ? ["znodes"] : []),
    ...(["a", "b"] as const).flatMap((r) => [
      ...(instance in fin.listed[r] ? [`listed by ${r}`] : []),
      ...(fin.discover[r].includes(instance) ? [`discover on ${r}`] : []),
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Rule 6: flag evaluations always answer

function checkFlags(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  for (const f of h.flags) {
    if (f.t1 > h.stopped) continue;
    const a = (name: string, message: string) =>
      out.push({ rule: 6, name, message: `${describe(f)} ${message}`, records: [f.i] });
    if (f.status !== undefined && f.status >= 500) a("flag-5xx", `answered ${f.status}`);
    else if (f.status !== undefined && (f.status < 200 || f.status >= 300)) {
      a("flag-refused", `answered ${f.status}`);
    } else if (f.outcome === "ok") {
      if (f.value === undefined || typeof f.reason !== "string" || f.reason === "") {
        a("flag-no-reason", `answered without ${f.value === undefined ? "a value" : "a reason"}`);
      }
    } else if (!replicaDown(h, f)) {
      a("flag-unanswered", `had no answer (${f.error ?? f.outcome}) while its replica was up`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rule 7: 5xx only as documented; unavailability per fault

const overlaps = (op: { t0: number; t1: number }, from: number, to: number) =>
  op.t0 <= to && op.t1 >= from;

function replicaDown(h: Index, op: Op): boolean {
  return h.windows.some((w) =>
    w.target === op.replica && w.backend === undefined && overlaps(op, w.start, w.end + h.grace)
  );
}

function needs(op: Op): Backend[] {
  return NEEDS[op.kind] ?? NEEDS.other;
}

/** Whether a fault window takes out something `op` needs. */
function affects(w: Window, op: Op): boolean {
  return w.backend ? needs(op).includes(w.backend) : w.target === op.replica;
}

function checkAvailability(h: Index): Anomaly[] {
  const out: Anomaly[] = [];
  for (const op of h.ops) {
    if (op.kind === "flag.eval" || !unavailable(op) || op.t1 > h.stopped) continue;
    if (op.status !== undefined && op.status !== 503 && op.status !== 504) {
      out.push({
        rule: 7,
        name: "unexpected-status",
        message: `${describe(op)} answered ${op.status}`,
        records: [op.i],
      });
      continue;
    }
    const excused = h.windows.some((w) => affects(w, op) && overlaps(op, w.start, w.end + h.grace));
    if (excused) continue;
    const active = h.windows.filter((w) => overlaps(op, w.start, w.end + h.grace));
    out.push({
      rule: 7,
      name: op.status !== undefined ? "undocumented-5xx" : "unexplained-failure",
      message: `${describe(op)} ${
        op.status !== undefined ? `answered ${op.status}` : `failed (${op.error ?? op.outcome})`
      } ${
        active.length
          ? `during ${active.map((w) => w.fault).join(", ")}, which it does not need`
          : "outside any fault window"
      }`,
      records: [op.i, ...active.flatMap((w) => w.records)],
    });
  }
  return out;
}

/**
 * A replica that ended without a kill or stop of the nemesis: a crash, or a signal from
 * outside the run. Each is an anomaly; what failed through it meanwhile is not reported again.
 */
function checkExits(h: Index): Anomaly[] {
  return h.exits.map((e) => ({
    rule: 7,
    name: "replica-exit",
    message: `replica ${e.replica} exited unasked (${e.signal ?? `exit code ${e.code}`}) at ${
      (e.t0 / 1000).toFixed(1)
    } s; ${
      e.restarted ? `answering again after ${Math.round(e.t1 - e.t0)} ms` : "never started again"
    }`,
    records: [e.i],
  }));
}

function measureUnavailability(h: Index): Unavailability[] {
  const kinds = groupBy(h.ops, (op) => op.kind);
  for (const ops of kinds.values()) ops.sort((x, y) => x.t1 - y.t1);
  const perFault = new Map<FaultKind, Map<string, number>>();
  for (const w of h.windows) {
    const byKind = perFault.get(w.fault) ?? new Map<string, number>();
    perFault.set(w.fault, byKind);
    const until = w.end + h.grace;
    for (const [kind, ops] of kinds) {
      let open: number | undefined, lastFailure = 0, longest = 0;
      // A span ends at the next success, but never later than the window's end plus grace:
      // failures after that are no longer this fault's (rule 7 reports them).
      for (const op of ops) {
        if (op.t1 < w.start || !affects(w, op)) continue;
        if (open === undefined) {
          if (op.t0 > until) break;
          if (unavailable(op)) [open, lastFailure] = [Math.max(op.t0, w.start), op.t1];
        } else if (unavailable(op)) lastFailure = op.t1;
        else if (op.t0 >= open) {
          longest = Math.max(longest, Math.min(op.t1, until) - open);
          open = undefined;
        }
      }
      if (open !== undefined) longest = Math.max(longest, Math.min(lastFailure, until) - open);
      if (longest > 0) byKind.set(kind, Math.max(byKind.get(kind) ?? 0, longest));
    }
  }
  return [...perFault].map(([fault, byKind]) => {
    const sorted = [...byKind].sort((x, y) => y[1] - x[1]);
    return {
      fault,
      longest_ms: Math.round(sorted[0]?.[1] ?? 0),
      op_kinds: sorted.map(([k]) => k),
      by_kind: Object.fromEntries(sorted.map(([k, v]) => [k, Math.round(v)])),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The report

function countOperations(records: HistoryRecord[]): OperationCount[] {
  const counts = new Map<string, OperationCount>();
  const add = (kind: string, outcome: "ok" | "fail" | "info") => {
    const c = counts.get(kind) ?? { kind, ok: 0, fail: 0, info: 0 };
    c[outcome]++;
    counts.set(kind, c);
  };
  for (const r of records) {
    if (isOp(r)) {
      add(
        r.kind === "config.read" && r.stale && r.outcome === "ok"
          ? "config.read stale"
          : opLabel(r),
        r.outcome,
      );
    } else if (r.kind === "sse.event") add("sse.event", "ok");
    else if (r.kind === "kafka.event") add(`kafka.event ${r.topic}`, "ok");
  }
  return [...counts.values()].sort((x, y) => x.kind.localeCompare(y.kind));
}

function summarizeFaults(h: Index): FaultSummary[] {
  const out = new Map<FaultKind, FaultSummary>();
  for (const w of h.windows) {
    const s = out.get(w.fault) ?? { fault: w.fault, count: 0, total_ms: 0 };
    s.count++;
    s.total_ms += Math.round(w.end - w.start);
    out.set(w.fault, s);
  }
  return [...out.values()];
}

/**
 * Judges a history. Pure: the same records give the same report.
 * @param records the history, in any order (each record's `i` names it in anomalies)
 */
export function check(records: HistoryRecord[], opts: CheckOptions = {}): Report {
  const h = index(records, opts);
  const anomalies = [
    ...checkDurability(h),
    ...checkReads(h),
    ...checkCas(h),
    ...checkKafka(h),
    ...checkSse(h),
    ...checkRegistry(h),
    ...checkFlags(h),
    ...checkAvailability(h),
    ...checkExits(h),
  ];
  return {
    operations: countOperations(records),
    faults: summarizeFaults(h),
    anomalies,
    unavailability: measureUnavailability(h),
    ok: anomalies.length === 0,
  };
}

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells.map((r) =>
    r.map((x, c) =>
      c === 0 || c === r.length - 1 && isNaN(Number(x))
        ? x.padEnd(widths[c])
        : x.padStart(widths[c])
    )
      .join("  ").trimEnd()
  ).join("\n");
}

/**
 * The report as plain-text tables for a terminal: operations, faults, unavailability, then the
 * anomalies by rule (at most `perName` messages of each kind, default 10; the JSON has them all).
 */
export function formatReport(r: Report, perName = 10): string {
  const parts = [
    "Operations\n" +
    table(["kind", "ok", "fail", "info"], r.operations.map((o) => [o.kind, o.ok, o.fail, o.info])),
    "Faults\n" +
    (r.faults.length
      ? table(["fault", "count", "total ms"], r.faults.map((f) => [f.fault, f.count, f.total_ms]))
      : "(none)"),
    "Longest unavailability per fault kind\n" + (r.unavailability.length
      ? table(
        ["fault", "longest ms", "operations that failed"],
        r.unavailability.map((u) => [
          u.fault,
          u.longest_ms,
          u.op_kinds.map((k) => `${k} ${u.by_kind[k]} ms`).join(", ") || "-",
        ]),
      )
      : "(none)"),
  ];
  const rules = ([1, 2, 3, 4, 5, 6, 7] as const).map((rule) => {
    const n = r.anomalies.filter((x) => x.rule === rule).length;
    return [`${rule} ${RULE_NAMES[rule]}`, n];
  });
  parts.push("Anomalies by rule\n" + table(["rule", "anomalies"], rules));
  if (r.anomalies.length) {
    const lines: string[] = [];
    for (const [name, list] of groupBy(r.anomalies, (x) => `${x.rule} ${x.name}`)) {
      lines.push(`[rule ${name}] ${list.length}`);
      for (const x of list.slice(0, perName)) lines.push(`  ${x.message}`);
      if (list.length > perName) lines.push(`  … ${list.length - perName} more in the JSON report`);
    }
    parts.push(lines.join("\n"));
  }
  parts.push(
    r.ok
      ? "Result: no anomalies"
      : `Result: ${r.anomalies.length} ${r.anomalies.length === 1 ? "anomaly" : "anomalies"}`,
  );
  return parts.join("\n\n");
}

function groupBy<T, K>(xs: T[], key: (x: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = out.get(k);
    if (list) list.push(x);
    else out.set(k, [x]);
  }
  return out;
}

if (import.meta.main) {
  const args = [...Deno.args];
  const j = args.indexOf("--json");
  const jsonOut = j >= 0 ? args.splice(j, 2)[1] : undefined;
  if (args.length !== 1 || (j >= 0 && !jsonOut)) {
    console.error("usage: deno run -A tests/chaos/checker.ts HISTORY.jsonl [--json OUT]");
    Deno.exit(2);
  }
  let records: HistoryRecord[];
  try {
    records = await readHistory(args[0]);
  } catch (err) {
    console.error(`Cannot read history ${args[0]}: ${(err as Error).message}`);
    Deno.exit(2);
  }
  const report = check(records);
  console.log(formatReport(report));
  if (jsonOut) await Deno.writeTextFile(jsonOut, JSON.stringify(report, null, 2) + "\n");
  Deno.exit(report.ok ? 0 : 1);
}
