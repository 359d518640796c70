import assert from "node:assert/strict";
import { check, formatReport, type Report, type Rule } from "./checker.ts";
import type {
  ConfigBulk,
  ConfigRead,
  ConfigWrite,
  FaultEnd,
  FaultKind,
  FaultStart,
  FinalHistory,
  FinalRead,
  FinalRegistry,
  FlagEval,
  HeartbeatStop,
  HistoryRecord,
  KafkaEvent,
  OtherOp,
  Outcome,
  RegistryOp,
  Replica,
  ReplicaExit,
  RunEnd,
  RunStart,
  SseConnect,
  SseEvent,
} from "./history.ts";

const ENV = "development";
const KEYS = ["k1", "k2"];
const END = 20_000;

interface WriteOpts {
  outcome?: Outcome;
  /** Whether the service applied it (default: only when acknowledged). */
  applied?: boolean;
  status?: number;
  error?: string;
  if_match?: number;
  to?: number;
}

interface Connect {
  t0: number;
  t1: number;
  replica: Replica;
  ok?: boolean;
  status?: number;
  error?: string;
  /** When the stream broke (default: the next connect, or the run's end). */
  until?: number;
  /** Resume this many events before the last one received (a redelivery). */
  rewind?: number;
  /** Connect without `Last-Event-ID` (as a watcher that received nothing yet does). */
  fresh?: boolean;
}

interface Change {
  seq: number;
  key: string;
  version: number;
  type: string;
  t: number;
}

const TYPE_OF: Record<ConfigWrite["op"], string> = {
  create: "created",
  put: "updated",
  cas: "updated",
  delete: "deleted",
  rollback: "rolled_back",
};

/**
 * Builds a history the way a run would record it, from a model of the service: writes the
 * model applies get the next version and a change-log position, and `finish()` derives what
 * Kafka, the SSE watchers and the final reads would show from those changes.
 */
class Run {
  readonly records: HistoryRecord[] = [];
  readonly changes: Change[] = [];
  readonly versions = new Map<string, { version: number; type: string; value?: unknown }[]>();
  readonly #watchers: { watcher: number; connects: Connect[] }[] = [];
  readonly #kafkaDown: [number, number][] = [];

  add<T extends HistoryRecord>(rec: Omit<T, "i">): T {
    const full = { ...rec, i: this.records.length } as T;
    this.records.push(full);
    return full;
  }

  start(): void {
    this.add<RunStart>({
      kind: "run.start",
      t0: 0,
      t1: 0,
      seed: 1,
      duration_s: 20,
      overlap: false,
      replica_lag_ms: 500,
      recovery_grace_ms: 2000,
      environment: ENV,
      keys: KEYS,
    });
  }

  entry(key: string, version: number) {
    return this.versions.get(key)?.find((e) => e.version === version);
  }

  current(key: string) {
    return this.versions.get(key)?.at(-1);
  }

  fault(fault: FaultKind, start: number, end: number, target?: Replica): void {
    const fault_id = this.records.filter((r) => r.kind === "fault.start").length + 1;
    const t = target ? { target } : {};
    this.add<FaultStart>({ kind: "fault.start", t0: start, t1: start + 10, fault, ...t, fault_id });
    this.add<FaultEnd>({ kind: "fault.end", t0: end - 100, t1: end, fault, ...t, fault_id });
    if (fault === "stop-kafka") this.#kafkaDown.push([start, end]);
  }

  write(
    t0: number,
    t1: number,
    replica: Replica,
    op: ConfigWrite["op"],
    key: string,
    o: WriteOpts = {},
  ): ConfigWrite {
    const outcome = o.outcome ?? "ok";
    const i = this.records.length;
    const value = op === "delete"
      ? undefined
      : op === "rollback"
      ? this.entry(key, o.to!)!.value
      : { w: i, c: 1 };
    let version: number | undefined;
    if (o.applied ?? outcome === "ok") {
      const list = this.versions.get(key) ?? [];
      version = (list.at(-1)?.version ?? 0) + 1;
      list.push({ version, type: TYPE_OF[op], value });
      this.versions.set(key, list);
      const seq = this.changes.length + 1;
      this.changes.push({ seq, key, version, type: TYPE_OF[op], t: (t0 + t1) / 2 });
    }
    return this.add<ConfigWrite>({
      kind: "config.write",
      t0,
      t1,
      environment: ENV,
      key,
      op,
      replica,
      client: 1,
      ...(value === undefined ? {} : { value }),
      ...(o.if_match === undefined ? {} : { if_match: o.if_match }),
      ...(o.to === undefined ? {} : { to: o.to }),
      outcome,
      ...(o.status !== undefined ? { status: o.status } : outcome === "ok" ? { status: 200 } : {}),
      ...(outcome === "ok" ? { version } : {}),
      ...(o.error ? { error: o.error } : {}),
    });
  }

  /** A read answering the current version, or `version`; `outcome` other than ok: a failure. */
  read(
    t0: number,
    t1: number,
    replica: Replica,
    key: string,
    o: { version?: number; stale?: boolean; outcome?: Outcome; status?: number } = {},
  ): ConfigRead {
    const base = {
      kind: "config.read" as const,
      t0,
      t1,
      environment: ENV,
      key,
      replica,
      client: 2,
    };
    if (o.outcome && o.outcome !== "ok") {
      return this.add<ConfigRead>({ ...base, outcome: o.outcome, status: o.status, error: "x" });
    }
    const version = o.version ?? this.current(key)?.version;
    const e = version === undefined ? undefined : this.entry(key, version);
    if (!e || e.type === "deleted") {
      return this.add<ConfigRead>({ ...base, outcome: "ok", status: 404, absent: true });
    }
    return this.add<ConfigRead>({
      ...base,
      outcome: "ok",
      status: 200,
      version,
      value: e.value,
      ...(o.stale ? { stale: true } : {}),
    });
  }

  bulk(t0: number, t1: number, replica: Replica, keys: string[]): ConfigBulk {
    const values: Record<string, unknown> = {};
    for (const k of keys) {
      const e = this.current(k);
      if (e && e.type !== "deleted") values[k] = e.value;
    }
    return this.add<ConfigBulk>({
      kind: "config.bulk",
      t0,
      t1,
      environment: ENV,
      replica,
      client: 3,
      keys,
      outcome: "ok",
      status: 200,
      values,
    });
  }

  registry(
    kind: RegistryOp["kind"],
    t0: number,
    replica: Replica,
    service: string,
    instance_id: string,
    o: { ttl?: number; outcome?: Outcome; status?: number; error?: string } = {},
  ): RegistryOp {
    const outcome = o.outcome ?? "ok";
    return this.add<RegistryOp>({
      kind,
      t0,
      t1: t0 + 5,
      replica,
      service,
      instance_id,
      ...(o.ttl ? { ttl_seconds: o.ttl } : {}),
      ...(kind === "registry.register" ? { healthy_target: true } : {}),
      outcome,
      ...(o.status !== undefined ? { status: o.status } : outcome === "ok" ? { status: 200 } : {}),
      ...(o.error ? { error: o.error } : {}),
    });
  }

  flag(t0: number, replica: Replica, o: { error?: string } = {}): FlagEval {
    const base = { kind: "flag.eval" as const, t0, t1: t0 + 2, replica, flag: "chaos-flag" };
    return this.add<FlagEval>(
      o.error
        ? { ...base, outcome: "info", error: o.error }
        : { ...base, outcome: "ok", status: 200, value: true, reason: "STATIC" },
    );
  }

  watch(watcher: number, connects: Connect[]): void {
    this.#watchers.push({ watcher, connects });
  }

  /** Records what the watchers received, what Kafka carried and the final reads and history. */
  finish(): void {
    for (const { watcher, connects } of this.#watchers) this.#stream(watcher, connects);
    const offsets = [0, 0];
    for (const c of this.changes) {
      const partition = KEYS.indexOf(c.key);
      const down = this.#kafkaDown.find(([s, e]) => c.t >= s && c.t < e);
      const t = down ? down[1] + 100 + c.seq : c.t + 30;
      this.add<KafkaEvent>({
        kind: "kafka.event",
        t0: t,
        t1: t,
        topic: "config",
        partition,
        offset: String(offsets[partition]++),
        event_id: `ev-${c.seq}`,
        type: c.type,
        key: c.key,
        environment: ENV,
        version: c.version,
      });
    }
    for (const [n, key] of KEYS.entries()) {
      for (const replica of ["a", "b"] as const) {
        const e = this.current(key)!;
        const t0 = 18_000 + 10 * n + (replica === "a" ? 0 : 5);
        this.add<FinalRead>({
          kind: "final.read",
          t0,
          t1: t0 + 2,
          environment: ENV,
          key,
          replica,
          ...(e.type === "deleted"
            ? { status: 404, absent: true }
            : { status: 200, version: e.version, value: e.value }),
        });
      }
      this.add<FinalHistory>({
        kind: "final.history",
        t0: 18_200,
        t1: 18_210,
        environment: ENV,
        key,
        versions: [...this.versions.get(key)!].reverse(),
      });
    }
  }

  #stream(watcher: number, connects: Connect[]): void {
    let last = 0;
    let fresh = true;
    for (const [n, c] of connects.entries()) {
      const resume = !fresh && !c.fresh;
      const ok = c.ok ?? true;
      this.add<SseConnect>({
        kind: "sse.connect",
        t0: c.t0,
        t1: c.t1,
        watcher,
        replica: c.replica,
        environment: ENV,
        last_event_id: resume ? String(last) : null,
        outcome: ok ? "ok" : "info",
        ...(c.status !== undefined ? { status: c.status } : ok ? { status: 200 } : {}),
        ...(c.error ? { error: c.error } : {}),
      });
      if (!ok) continue;
      fresh = false;
      const until = c.until ?? connects[n + 1]?.t0 ?? END;
      const from = resume
        ? last - (c.rewind ?? 0)
        : Math.max(0, ...this.changes.filter((x) => x.t < c.t1).map((x) => x.seq));
      for (const x of this.changes) {
        const t = Math.max(x.t + 20, c.t1 + 1 + x.seq / 100);
        if (x.seq <= from || t >= until) continue;
        this.add<SseEvent>({
          kind: "sse.event",
          t0: t,
          t1: t,
          watcher,
          replica: c.replica,
          environment: ENV,
          id: String(x.seq),
          type: x.type,
          key: x.key,
          version: x.version,
        });
        last = Math.max(last, x.seq);
      }
    }
  }
}

/**
 * A valid run: writes of every kind on two keys (a delete and re-create, a rollback, a refused
 * CAS), a PostgreSQL outage with 503s and stale reads, a kill of replica a with connection
 * failures and an `info` write that took effect, a Kafka outage, watchers that reconnect
 * with `Last-Event-ID` (one across the outage, one receiving an event twice), health-checked and
 * TTL instances, a TTL instance that expires after its heartbeats stop, flag evaluations.
 *
 * Versions (k1): 1 create, 2 put, 3 cas, 4 rollback to 2, 5 put, 6 the `info` put through the
 * killed replica (`infoApplied`), 7 put, 8 put; (k2): 1 create, 2 delete, 3 create, 4 cas.
 * `extra` runs after the last workload operation (13 s) and before the final phase (18 s).
 */
function baseline(
  o: { infoApplied?: boolean; extra?: (r: Run) => void; finish?: (r: Run) => void } = {},
): Run {
  const r = new Run();
  r.start();
  r.fault("stop-postgres", 4000, 6000);
  r.fault("kill-replica", 9000, 11_000, "a");
  r.fault("stop-kafka", 12_500, 14_500);
  r.watch(1, [
    { t0: 5, t1: 8, replica: "a" },
    { t0: 4400, t1: 4410, replica: "b", ok: false, status: 503 },
    { t0: 6500, t1: 6510, replica: "b", until: 11_550 },
    { t0: 11_800, t1: 11_810, replica: "a" },
    { t0: 15_000, t1: 15_010, replica: "a", rewind: 2 },
  ]);
  r.watch(2, [{ t0: 5, t1: 9, replica: "b" }]);

  r.write(10, 20, "a", "create", "k1");
  r.write(25, 35, "b", "create", "k2");
  r.write(40, 50, "b", "put", "k1");
  r.read(600, 605, "a", "k1");
  r.read(610, 612, "b", "k1");
  r.write(620, 630, "a", "cas", "k1", { if_match: 2 });
  r.write(640, 650, "b", "cas", "k1", { if_match: 2, outcome: "fail", status: 412 });
  r.bulk(1200, 1205, "a", ["k1", "k2"]);
  r.write(1210, 1220, "a", "delete", "k2");
  r.read(1800, 1805, "b", "k2");
  r.write(1810, 1820, "b", "create", "k2");
  r.add<OtherOp>({
    kind: "other",
    name: "registry.discover",
    t0: 2000,
    t1: 2003,
    replica: "a",
    outcome: "ok",
    status: 200,
  });
  r.read(2400, 2405, "a", "k2");
  r.write(2410, 2420, "b", "rollback", "k1", { to: 2 });
  r.bulk(3000, 3005, "b", ["k1"]);
  // PostgreSQL down 4000–6000: writes 503, cached reads stale, one uncached read 503.
  r.write(4200, 4205, "a", "put", "k1", { outcome: "info", status: 503 });
  r.read(4300, 4302, "b", "k1", { stale: true });
  r.read(4310, 4312, "a", "k2", { stale: true });
  r.read(4320, 4330, "a", "k1", { outcome: "info", status: 503 });
  r.add<OtherOp>({
    kind: "other",
    name: "registry.discover",
    t0: 4500,
    t1: 4503,
    replica: "b",
    outcome: "info",
    status: 503,
  });
  r.write(5000, 5003, "b", "put", "k2", { outcome: "info", status: 503 });
  r.write(6100, 6110, "a", "put", "k2", { outcome: "info", status: 503 }); // within the grace
  r.read(6200, 6205, "a", "k2");
  r.write(6300, 6310, "b", "put", "k1");
  // Replica a killed 9000–11000.
  r.write(8990, 9005, "a", "put", "k1", {
    outcome: "info",
    error: "connection reset",
    applied: o.infoApplied ?? true,
  });
  r.write(9100, 9102, "a", "put", "k2", { outcome: "info", error: "connection refused" });
  r.read(9600, 9602, "b", "k1");
  r.write(11_500, 11_510, "a", "cas", "k2", { if_match: 3 });
  r.write(11_600, 11_610, "b", "put", "k1"); // while watcher 1 is between connections
  r.read(12_100, 12_105, "a", "k1");
  // Kafka down 12500–14500: writes go on, events arrive late.
  r.write(13_000, 13_010, "b", "put", "k1");
  o.extra?.(r);

  r.registry("registry.register", 100, "a", "checked", "checked-0");
  r.registry("registry.register", 120, "b", "checked", "checked-1");
  r.registry("registry.register", 140, "a", "ttl", "ttl-1", { ttl: 5 });
  r.registry("registry.register", 160, "b", "ttl", "ttl-0", { ttl: 5 });
  r.registry("registry.deregister", 7000, "a", "checked", "checked-1");
  for (let t = 1140, n = 0; t < 19_900; t += 1000, n++) {
    for (const id of t < 3500 ? ["ttl-1", "ttl-0"] : ["ttl-1"]) {
      const at = id === "ttl-1" ? t : t + 20;
      const replica: Replica = n % 2 ? "a" : "b";
      const other: Replica = replica === "a" ? "b" : "a";
      if (at >= 4000 && at < 6000) {
        r.registry("registry.heartbeat", at, replica, "ttl", id, { outcome: "info", status: 503 });
        r.registry("registry.heartbeat", at + 6, other, "ttl", id, {
          outcome: "info",
          status: 503,
        });
      } else if (replica === "a" && at >= 9000 && at < 11_000) {
        r.registry("registry.heartbeat", at, "a", "ttl", id, {
          outcome: "info",
          error: "connection refused",
        });
        r.registry("registry.heartbeat", at + 6, "b", "ttl", id);
      } else {
        r.registry("registry.heartbeat", at, replica, "ttl", id);
      }
    }
  }
  r.add<HeartbeatStop>({
    kind: "registry.heartbeat_stop",
    t0: 3500,
    t1: 3500,
    service: "ttl",
    instance_id: "ttl-0",
  });
  for (let t = 300, n = 0; t < 17_900; t += 700, n++) {
    const replica: Replica = n % 2 ? "a" : "b";
    const down = replica === "a" && t >= 9000 && t < 11_000;
    r.flag(t, replica, down ? { error: "connection refused" } : {});
  }

  r.finish();
  // Kafka redelivers after its restart: once at the same offset (a consumer rejoining), once
  // at a new offset (the relay publishing again before it marked the row sent).
  const events = r.records.filter((x): x is KafkaEvent => x.kind === "kafka.event");
  r.add<KafkaEvent>({ ...events[0], t0: 14_700, t1: 14_700 });
  const last = events.filter((e) => e.partition === 0).at(-1)!;
  r.add<KafkaEvent>({
    ...last,
    offset: String(Number(last.offset) + 1),
    t0: 14_650,
    t1: 14_650,
  });
  r.add<FinalRegistry>({
    kind: "final.registry",
    t0: 19_500,
    t1: 19_510,
    service: "checked",
    znodes: ["checked-0"],
    discover: { a: ["checked-0"], b: ["checked-0"] },
    listed: { a: { "checked-0": "healthy" }, b: { "checked-0": "healthy" } },
  });
  r.add<FinalRegistry>({
    kind: "final.registry",
    t0: 19_500,
    t1: 19_510,
    service: "ttl",
    znodes: ["ttl-0", "ttl-1"],
    discover: { a: ["ttl-1"], b: ["ttl-1"] },
    listed: {
      a: { "ttl-0": "unhealthy", "ttl-1": "healthy" },
      b: { "ttl-0": "unhealthy", "ttl-1": "healthy" },
    },
  });
  o.finish?.(r);
  r.add<RunEnd>({ kind: "run.end", t0: END, t1: END });
  return r;
}

/** Asserts the report is clean. */
function assertClean(report: Report): void {
  assert.deepEqual(report.anomalies, [], formatReport(report));
  assert.equal(report.ok, true);
}

/** Asserts that only `rule` fired, with an anomaly named `name` involving `records`. */
function assertOnly(report: Report, rule: Rule, name: string, records: number[] = []): void {
  const fired = [...new Set(report.anomalies.map((a) => a.rule))];
  assert.deepEqual(fired, [rule], formatReport(report));
  const named = report.anomalies.filter((a) => a.name === name);
  assert.ok(named.length > 0, `no ${name} anomaly:\n${formatReport(report)}`);
  for (const i of records) {
    assert.ok(named.some((a) => a.records.includes(i)), `${name} does not name record ${i}`);
  }
  assert.equal(report.ok, false);
}

function find<T extends HistoryRecord>(
  r: Run,
  pred: (x: HistoryRecord) => boolean,
): T & HistoryRecord {
  const found = r.records.filter(pred);
  assert.equal(found.length, 1, `expected one record, found ${found.length}`);
  return found[0] as T & HistoryRecord;
}

const isWrite = (op: string, key: string, t0: number) => (x: HistoryRecord) =>
  x.kind === "config.write" && x.op === op && x.key === key && x.t0 === t0;
const registry = (r: Run, service: string) =>
  find<FinalRegistry>(r, (x) => x.kind === "final.registry" && x.service === service);

// ---------------------------------------------------------------------------------------------

Deno.test("check() passes a valid run: faults, info outcomes, reconnects, TTL expiry", () => {
  const r = baseline();
  const report = check(r.records);
  assertClean(report);
  const row = (kind: string) => report.operations.find((o) => o.kind === kind);
  assert.deepEqual(row("config.write put"), { kind: "config.write put", ok: 4, fail: 0, info: 5 });
  assert.deepEqual(row("config.write cas"), { kind: "config.write cas", ok: 2, fail: 1, info: 0 });
  assert.deepEqual(row("config.read stale"), {
    kind: "config.read stale",
    ok: 2,
    fail: 0,
    info: 0,
  });
  assert.deepEqual(row("config.read"), { kind: "config.read", ok: 7, fail: 0, info: 1 });
  assert.deepEqual(report.faults, [
    { fault: "stop-postgres", count: 1, total_ms: 2000 },
    { fault: "kill-replica", count: 1, total_ms: 2000 },
    { fault: "stop-kafka", count: 1, total_ms: 2000 },
  ]);
  const pg = report.unavailability.find((u) => u.fault === "stop-postgres")!;
  // Writes: the first 503 at 4200 ms to the first acknowledged write, answered at 6310 ms.
  assert.equal(pg.by_kind["config.write"], 2110);
  assert.equal(pg.by_kind["config.read"], 6205 - 4320);
  assert.equal(pg.longest_ms, 2110);
  const kill = report.unavailability.find((u) => u.fault === "kill-replica")!;
  // Writes through a: from the fault's start (an attempt in flight) to the CAS at 11510 ms.
  assert.equal(kill.by_kind["config.write"], 2510);
  assert.ok(kill.op_kinds.includes("flag.eval"));
  assert.deepEqual(report.unavailability.find((u) => u.fault === "stop-kafka")!.op_kinds, []);
  const text = formatReport(report);
  assert.match(text, /config\.write put\s+4\s+0\s+5/);
  assert.match(text, /stop-postgres\s+2110/);
  assert.match(text, /Result: no anomalies/);
});

Deno.test("check() accepts an info write whether or not it took effect", () => {
  for (const infoApplied of [true, false]) {
    const r = baseline({ infoApplied });
    const info = find<ConfigWrite>(r, isWrite("put", "k1", 8990));
    assert.equal(
      r.versions.get("k1")!.some((e) => (e.value as { w?: number })?.w === info.i),
      infoApplied,
    );
    assertClean(check(r.records));
  }
});

Deno.test("check() does not depend on the order of the records", () => {
  const r = baseline();
  assertClean(check([...r.records].reverse()));
});

// Rule 1 --------------------------------------------------------------------------------------

Deno.test("check() finds a lost write: an acknowledged version missing from the history", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 11_600));
  const h = find<FinalHistory>(r, (x) => x.kind === "final.history" && x.key === "k1");
  h.versions = h.versions.filter((v) => v.version !== w.version);
  assertOnly(check(r.records), 1, "lost-write", [w.i, h.i]);
});

Deno.test("check() finds a value changed in the history under an acknowledged version", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 6300));
  const h = find<FinalHistory>(r, (x) => x.kind === "final.history" && x.key === "k1");
  h.versions.find((v) => v.version === w.version)!.value = { w: 9999 };
  const report = check(r.records);
  assertOnly(report, 1, "changed-value", [w.i]);
  assert.ok(report.anomalies.some((a) => a.name === "unknown-value"));
});

Deno.test("check() finds a write that was refused yet appears in the history", () => {
  const r = baseline({
    extra: (r) =>
      r.write(15_500, 15_510, "a", "put", "k2", { outcome: "fail", status: 404, applied: true }),
  });
  assertOnly(check(r.records), 1, "unknown-value");
});

Deno.test("check() finds a final read behind the history", () => {
  const r = baseline();
  const fr = find<FinalRead>(
    r,
    (x) => x.kind === "final.read" && x.key === "k1" && x.replica === "b",
  );
  fr.version = 7;
  fr.value = r.entry("k1", 7)!.value;
  assertOnly(check(r.records), 1, "final-read-stale", [fr.i]);
});

// Rule 2 --------------------------------------------------------------------------------------

Deno.test("check() finds a stale read on one replica (older than its previous read)", () => {
  const r = baseline();
  const before = find<ConfigRead>(r, (x) => x.kind === "config.read" && x.t0 === 9600);
  assert.equal(before.version, 6);
  // Version 5 is all that acknowledged writes require (6 was the info write); the earlier
  // read of 6 through the same replica is what forbids it.
  const stale = r.read(9700, 9702, "b", "k1", { version: 5 });
  assertOnly(check(r.records), 2, "stale-read", [before.i, stale.i]);
});

Deno.test("check() allows another replica to be behind one replica's read", () => {
  const r = baseline();
  r.read(11_100, 11_102, "a", "k1", { version: 5 });
  assertClean(check(r.records));
});

Deno.test("check() finds a read older than an acknowledged write after the replica lag", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 11_600));
  // Through the other replica, 590 ms after the write completed (bound 500 ms).
  const late = r.read(12_200, 12_205, "a", "k1", { version: 6 });
  assertOnly(check(r.records), 2, "read-your-writes", [w.i, late.i]);
});

Deno.test("check() allows the other replica to lag within the bound, not the same replica", () => {
  const within = baseline();
  within.read(11_700, 11_705, "a", "k1", { version: 6 });
  assertClean(check(within.records));
  const same = baseline();
  const w = find<ConfigWrite>(same, isWrite("put", "k1", 11_600));
  const read = same.read(11_620, 11_625, "b", "k1", { version: 6 });
  assertOnly(check(same.records), 2, "read-your-writes", [w.i, read.i]);
});

Deno.test("check() finds a stale answer from cache older than an acknowledged write", () => {
  const r = baseline();
  // During the PostgreSQL outage, replica b answers k1 from cache at version 3, but 4 (the
  // rollback at 2420 ms) was acknowledged long before: stale is no excuse for going back.
  const read = r.read(4350, 4352, "b", "k1", { version: 3, stale: true });
  assertOnly(check(r.records), 2, "read-your-writes", [read.i]);
});

Deno.test("check() lets a stale answer miss another replica's write, never its own or go back", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 13_000));
  assert.equal(w.replica, "b");
  // Through a, past the lag bound after b acknowledged its write: marked stale, so it promises nothing about
  // b's writes (docs/api.md, X-Config-Stale).
  r.read(13_600, 13_605, "a", "k1", { version: w.version! - 1, stale: true });
  assertClean(check(r.records));
  // The same answer not marked stale is an anomaly.
  const fresh = baseline();
  const late = fresh.read(13_600, 13_605, "a", "k1", { version: w.version! - 1 });
  assertOnly(check(fresh.records), 2, "read-your-writes", [
    find<ConfigWrite>(fresh, isWrite("put", "k1", 13_000)).i,
    late.i,
  ]);
});

Deno.test("check() finds a 404 after an acknowledged write with no delete to explain it", () => {
  const r = baseline();
  const read = r.add<ConfigRead>({
    kind: "config.read",
    t0: 12_300,
    t1: 12_302,
    environment: ENV,
    key: "k1",
    replica: "a",
    client: 2,
    outcome: "ok",
    status: 404,
    absent: true,
  });
  assertOnly(check(r.records), 2, "read-your-writes", [read.i]);
});

Deno.test("check() does not let a later delete explain an earlier 404", () => {
  const r = baseline({ extra: (r) => r.write(16_000, 16_010, "b", "delete", "k2") });
  // k2 was re-created (3) and CAS-ed (4, acknowledged at 11510 ms through a); the delete
  // that would explain a 404 was only sent at 16000 ms.
  const read = r.add<ConfigRead>({
    kind: "config.read",
    t0: 12_300,
    t1: 12_302,
    environment: ENV,
    key: "k2",
    replica: "a",
    client: 2,
    outcome: "ok",
    status: 404,
    absent: true,
  });
  assertOnly(check(r.records), 2, "read-your-writes", [read.i]);
  read.t0 = 16_600;
  read.t1 = 16_602;
  assertClean(check(r.records));
});

Deno.test("check() finds a bulk read older than the replica's previous read", () => {
  const r = baseline();
  // Version 3's value only ever stood at version 3; b had read version 6 at 9600 ms.
  const bulk = r.add<ConfigBulk>({
    kind: "config.bulk",
    t0: 9700,
    t1: 9705,
    environment: ENV,
    replica: "b",
    client: 3,
    keys: ["k1"],
    outcome: "ok",
    status: 200,
    values: { k1: r.entry("k1", 3)!.value },
  });
  assertOnly(check(r.records), 2, "stale-read", [bulk.i]);
});

// Rule 3 --------------------------------------------------------------------------------------

Deno.test("check() finds a double CAS: two writes acknowledged from one If-Match version", () => {
  const r = baseline({
    extra: (r) => {
      r.write(15_500, 15_510, "a", "cas", "k1", { if_match: 8 });
      r.write(15_520, 15_530, "b", "cas", "k1", { if_match: 8 });
    },
  });
  const report = check(r.records);
  assertOnly(report, 3, "double-cas");
  assert.deepEqual(
    report.anomalies.map((a) => a.name).sort(),
    ["cas-precondition", "double-cas"],
  );
});

Deno.test("check() finds a CAS acknowledged from a version that was no longer current", () => {
  const r = baseline({
    extra: (r) => {
      r.write(15_500, 15_510, "a", "put", "k1");
      r.write(15_600, 15_610, "b", "cas", "k1", { if_match: 8 });
    },
  });
  assertOnly(check(r.records), 3, "cas-precondition");
});

// Rule 4 --------------------------------------------------------------------------------------

Deno.test("check() finds an acknowledged write missing from Kafka", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("create", "k2", 1810));
  const gone = r.records.filter((x) =>
    x.kind === "kafka.event" && x.key === "k2" && x.version === w.version
  );
  assert.equal(gone.length, 1);
  r.records.splice(r.records.indexOf(gone[0]), 1);
  assertOnly(check(r.records), 4, "kafka-missing", [w.i]);
});

Deno.test("check() finds Kafka events of one key out of version order", () => {
  const r = baseline();
  const ev = (v: number) =>
    find<KafkaEvent>(r, (x) => x.kind === "kafka.event" && x.key === "k1" && x.version === v);
  const [two, three] = [ev(2), ev(3)];
  [two.offset, three.offset] = [three.offset, two.offset];
  assertOnly(check(r.records), 4, "kafka-order", [two.i, three.i]);
});

Deno.test("check() finds an SSE gap across a reconnect", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 11_600));
  // Watcher 1 was disconnected when the write happened; the resumed stream must replay it
  // (and the stream resumed at 15 s delivers it again: drop both).
  const replayed = r.records.filter((x) =>
    x.kind === "sse.event" && x.watcher === 1 && x.key === "k1" && x.version === w.version
  );
  assert.equal(replayed.length, 2);
  for (const e of replayed) r.records.splice(r.records.indexOf(e), 1);
  const report = check(r.records);
  assertOnly(report, 4, "sse-gap", [w.i]);
  assert.match(report.anomalies[0].message, /after reconnecting/);
});

Deno.test("check() finds an SSE event missing at the end of a watcher's stream", () => {
  const r = baseline();
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 13_000));
  for (const e of r.records.filter((x) => x.kind === "sse.event" && x.watcher === 2)) {
    if (e.kind === "sse.event" && e.version === w.version && e.key === "k1") {
      r.records.splice(r.records.indexOf(e), 1);
    }
  }
  assertOnly(check(r.records), 4, "sse-missing", [w.i]);
});

Deno.test("check() allows writes within the tail of a watcher's stream to be missing", () => {
  const r = baseline({
    extra: (r) => r.write(16_000, 16_010, "b", "put", "k2"),
    finish: (r) => {
      const late = r.records.filter((x) =>
        x.kind === "sse.event" && x.key === "k2" && x.t0 > 16_000
      );
      assert.equal(late.length, 2);
      for (const e of late) r.records.splice(r.records.indexOf(e), 1);
    },
  });
  // The stream ran to 20000 ms: with a 5 s tail the write at 16010 ms need not have arrived.
  assertClean(check(r.records));
  assertOnly(check(r.records, { sseTailMs: 1000 }), 4, "sse-missing");
});

Deno.test("check() expects nothing from the gap before a reconnect without Last-Event-ID", () => {
  const stream: Connect[] = [
    { t0: 5, t1: 8, replica: "a", until: 1000 },
    { t0: 3000, t1: 3010, replica: "b", fresh: true },
  ];
  // The delete (1215 ms), the re-create (1815 ms) and the rollback (2415 ms) fall between the
  // two streams, which nothing can replay; later writes must still arrive.
  const r = baseline({ extra: (r) => r.watch(3, stream) });
  const events = r.records.filter((x): x is SseEvent => x.kind === "sse.event" && x.watcher === 3);
  assert.ok(!events.some((e) => e.t0 > 1000 && e.t0 < 3000));
  assertClean(check(r.records));
  const late = find<SseEvent>(
    r,
    (x) => x.kind === "sse.event" && x.watcher === 3 && x.key === "k1" && x.version === 5,
  );
  r.records.splice(r.records.indexOf(late), 1);
  assertOnly(check(r.records), 4, "sse-gap");
});

Deno.test("check() finds an SSE stream stepping back", () => {
  const r = baseline();
  const e = find<SseEvent>(
    r,
    (x) => x.kind === "sse.event" && x.watcher === 2 && x.key === "k1" && x.version === 3,
  );
  e.t0 = e.t1 = 20; // before version 1 and 2, though 3 was written after them
  assertOnly(check(r.records), 4, "sse-order");
});

// Rule 5 --------------------------------------------------------------------------------------

Deno.test("check() finds a lost registration: missing from the znodes", () => {
  const r = baseline();
  registry(r, "checked").znodes = [];
  const report = check(r.records);
  assertOnly(report, 5, "lost-registration");
  assert.match(report.anomalies[0].message, /checked\/checked-0.*missing from znodes/);
});

Deno.test("check() finds a lost registration: missing from one replica's discover", () => {
  const r = baseline();
  registry(r, "checked").discover.b = [];
  const report = check(r.records);
  assertOnly(report, 5, "lost-registration");
  assert.match(report.anomalies[0].message, /missing from discover on b/);
});

Deno.test("check() finds a TTL instance expired while its heartbeats were acknowledged", () => {
  const r = baseline();
  const fin = registry(r, "ttl");
  fin.discover.a = [];
  fin.listed.a["ttl-1"] = "unhealthy";
  const report = check(r.records);
  assertOnly(report, 5, "ttl-expired-early");
  assert.match(report.anomalies[0].message, /ttl\/ttl-1.*discover on a/);
});

Deno.test("check() allows a TTL instance to expire when its heartbeats failed for a TTL", () => {
  const r = baseline();
  // Every heartbeat of ttl-1 between 8000 and 14000 ms fails: a gap over 5 s.
  for (const x of r.records) {
    if (
      x.kind === "registry.heartbeat" && x.instance_id === "ttl-1" && x.t0 > 8000 && x.t0 < 14_000
    ) {
      Object.assign(x, { outcome: "info", status: 503 });
    }
  }
  r.fault("stop-zookeeper", 8000, 14_000);
  const fin = registry(r, "ttl");
  fin.discover.a = [];
  assertClean(check(r.records));
});

Deno.test("check() finds a TTL instance still discovered long after its heartbeats stopped", () => {
  const r = baseline();
  registry(r, "ttl").discover.b = ["ttl-1", "ttl-0"];
  assertOnly(check(r.records), 5, "ttl-not-expired");
});

Deno.test("check() lets an unacknowledged heartbeat keep a TTL instance alive", () => {
  const r = baseline();
  // ttl-0's heartbeat at 17 s timed out: it may have arrived, so ttl-0 may still be healthy.
  r.registry("registry.heartbeat", 17_000, "b", "ttl", "ttl-0", {
    outcome: "info",
    error: "timeout",
  });
  r.fault("pause-replica", 16_900, 17_100, "b");
  const fin = registry(r, "ttl");
  fin.discover.b = ["ttl-0", "ttl-1"];
  fin.listed.b["ttl-0"] = "healthy";
  assertClean(check(r.records));
});

Deno.test("check() finds an instance still registered after its deregistration", () => {
  const r = baseline();
  registry(r, "checked").znodes.push("checked-1");
  assertOnly(check(r.records), 5, "zombie-instance");
});

// Rule 6 --------------------------------------------------------------------------------------

Deno.test("check() finds a flag evaluation answered 5xx", () => {
  const r = baseline();
  const f = find<FlagEval>(r, (x) => x.kind === "flag.eval" && x.t0 === 1000);
  Object.assign(f, { outcome: "info", status: 500, value: undefined, reason: undefined });
  assertOnly(check(r.records), 6, "flag-5xx", [f.i]);
});

Deno.test("check() finds a flag evaluation without a reason", () => {
  const r = baseline();
  const f = find<FlagEval>(r, (x) => x.kind === "flag.eval" && x.t0 === 1000);
  delete f.reason;
  assertOnly(check(r.records), 6, "flag-no-reason", [f.i]);
});

Deno.test("check() finds a flag evaluation unanswered while its replica was up", () => {
  const r = baseline();
  const f = r.flag(16_000, "b", { error: "connection refused" });
  assertOnly(check(r.records), 6, "flag-unanswered", [f.i]);
});

// Rule 7 --------------------------------------------------------------------------------------

Deno.test("check() finds a 503 outside any fault window", () => {
  const r = baseline({
    extra: (r) => r.write(17_000, 17_005, "a", "put", "k1", { outcome: "info", status: 503 }),
  });
  const w = find<ConfigWrite>(r, isWrite("put", "k1", 17_000));
  const report = check(r.records);
  assertOnly(report, 7, "undocumented-5xx", [w.i]);
  assert.match(report.anomalies[0].message, /outside any fault window/);
});

Deno.test("check() finds a 503 during the outage of a backend the operation does not need", () => {
  const r = baseline({
    extra: (r) => r.write(13_500, 13_505, "a", "put", "k1", { outcome: "info", status: 503 }),
  });
  const report = check(r.records);
  assertOnly(report, 7, "undocumented-5xx");
  assert.match(report.anomalies[0].message, /during stop-kafka, which it does not need/);
});

Deno.test("check() finds a 503 after the recovery grace", () => {
  const r = baseline({
    extra: (r) => r.read(8500, 8505, "b", "k2", { outcome: "info", status: 503 }),
  });
  // PostgreSQL came back at 6000 ms; the grace is 2000 ms.
  assertOnly(check(r.records), 7, "undocumented-5xx");
  assertClean(check(r.records, { recoveryGraceMs: 2600 }));
});

Deno.test("check() finds a 500 even during an outage", () => {
  const r = baseline({
    extra: (r) => r.write(4250, 4255, "b", "put", "k1", { outcome: "info", status: 500 }),
  });
  assertOnly(check(r.records), 7, "unexpected-status");
});

Deno.test("check() finds a connection failure while the replica was up", () => {
  const r = baseline();
  r.registry("registry.heartbeat", 16_000, "b", "ttl", "ttl-1", {
    outcome: "info",
    error: "connection reset",
  });
  assertOnly(check(r.records), 7, "unexplained-failure");
});

Deno.test("check() reports a replica that exited unasked once, not each request failed by it", () => {
  const r = baseline();
  r.flag(16_000, "b", { error: "connection refused" });
  r.registry("registry.heartbeat", 16_100, "b", "ttl", "ttl-1", {
    outcome: "info",
    error: "connection reset",
  });
  const e = r.add<ReplicaExit>({
    kind: "replica.exit",
    t0: 15_900,
    t1: 16_500,
    replica: "b",
    code: 137,
    signal: "SIGKILL",
    restarted: true,
  });
  const report = check(r.records);
  assert.deepEqual(report.anomalies.map((a) => a.name), ["replica-exit"], formatReport(report));
  assert.equal(report.anomalies[0].rule, 7);
  assert.deepEqual(report.anomalies[0].records, [e.i]);
  assert.match(
    report.anomalies[0].message,
    /replica b exited unasked \(SIGKILL\) at 15\.9 s; answering again after 600 ms/,
  );
  assert.ok(report.faults.some((f) => f.fault === "replica-exit" && f.count === 1));
});
