/**
 * The chaos run's workload: bounded, seeded clients of the two replicas that write their
 * history as they go (tests/chaos/history.ts says what each record means).
 *
 * - `clients` config loops on a small hot key set of one environment: blind PUTs, `If-Match`
 *   CAS (GET, then PUT guarded by the version read), creates, deletes, rollbacks to a version
 *   whose value the client saw, single-key and bulk reads, list reads. Every written value is
 *   unique in the run: `{"w": <the write record's i>, "c": <client>}`.
 * - SSE watchers of the environment, reconnecting (to either replica) with `Last-Event-ID`
 *   when their stream ends, stalls, or at a random time.
 * - A Kafka consumer of the run's config and flag topics, from the beginning; it reconnects
 *   when Kafka comes back and can {@link KafkaTail.drain drain} to the topics' ends.
 * - Registrations: TTL instances with a heartbeat loop each (one stops heartbeating half-way),
 *   health-checked instances served by the harness (one deregistered a third of the way),
 *   a churn of short-lived instances, and `discover` reads.
 * - Flag evaluations of the run's Unleash flags, and a toggler that switches one of them in
 *   Unleash so the flag topic carries changes.
 *
 * Every loop sleeps between operations (rates stay bounded) and catches every error: a replica
 * being down is recorded, never fatal. Each request times out after `REQUEST_TIMEOUT_MS`.
 */
import { createKafka } from "../../lib/backends/kafka.ts";
import { seeded } from "../_clock.ts";
import type {
  ConfigBulk,
  ConfigRead,
  ConfigWrite,
  FlagEval,
  HeartbeatStop,
  HistoryWriter,
  KafkaEvent,
  OtherOp,
  Outcome,
  RegistryOp,
  Replica,
  SseConnect,
  SseEvent,
} from "./history.ts";

type Kafka = ReturnType<typeof createKafka>;

/** Per-request timeout (ms): a paused replica's requests end `info` after this. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A heartbeat gives up sooner, and is retried on the other replica, so a TTL holds. */
const HEARTBEAT_TIMEOUT_MS = 2_500;
/** A watch stream silent this long (the service sends a comment every 15 s) is reconnected. */
const SSE_IDLE_MS = 25_000;

const REPLICAS: Replica[] = ["a", "b"];

/** A seeded pseudo-random source (mulberry32): the same seed gives the same choices. */
export class Rng {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = seeded(seed);
  }

  /** A number in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#next() * items.length)];
  }

  /** A key of `weights`, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Record<K, number>): K {
    const entries = Object.entries(weights) as [K, number][];
    let x = this.#next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) {
      if ((x -= w) < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.#next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

/** Sleeps `ms`; resolves false at once when `signal` aborts (true after the full sleep). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(slept);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** An HTTP answer (body parsed as JSON when it is JSON), or why there was none. */
type Answer =
  | { status: number; body: unknown; headers: Headers; error?: undefined }
  | { status?: undefined; body?: undefined; headers?: undefined; error: string };

/** One request; never throws (a refused connection, a reset or a timeout is an `error`). */
async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  try {
    const res = await fetch(base + path, {
      method,
      headers: opts.body === undefined
        ? opts.headers
        : { "content-type": "application/json", ...opts.headers },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, body: parseJson(await res.text()), headers: res.headers };
  } catch (err) {
    return { error: errorText(err) };
  }
}

/** `text` parsed as JSON, else `text` itself (null when empty). */
function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return text;
  }
}

/** A short description of a fetch failure (timeouts and resets say which). */
function errorText(err: unknown): string {
  if (err instanceof DOMException && err.name === "TimeoutError") return "timeout";
  const e = err as Error;
  const cause = e?.cause ? `: ${(e.cause as Error).message ?? e.cause}` : "";
  return `${e?.name ?? "Error"}: ${e?.message ?? String(err)}${cause}`.slice(0, 300);
}

/**
 * Outcome of a write (or any request whose effect is unknown on a 5xx): 2xx ok, 4xx fail,
 * 5xx or no answer info.
 */
function outcomeOf(a: Answer): { outcome: Outcome; status?: number; error?: string } {
  if (a.error !== undefined) return { outcome: "info", error: a.error };
  const outcome: Outcome = a.status < 300 ? "ok" : a.status < 500 ? "fail" : "info";
  return { outcome, status: a.status, ...(outcome === "ok" ? {} : { error: problemOf(a) }) };
}

/** The `detail` (else `title`) of a problem answer, for the history's `error`. */
function problemOf(a: Answer): string | undefined {
  const b = a.body as { detail?: unknown; title?: unknown } | null | undefined;
  const s = typeof b === "object" && b ? (b.detail ?? b.title) : b;
  return s === undefined || s === null || s === "" ? undefined : String(s).slice(0, 300);
}

/** The flags the run created in Unleash, and how to evaluate each. */
export interface FlagSpec {
  name: string;
  /** `default_value` sent with every evaluation (its JSON type is the flag's type). */
  defaultValue: unknown;
}

export interface WorkloadOptions {
  history: HistoryWriter;
  /** Milliseconds since the run began. */
  now: () => number;
  seed: number;
  urls: Record<Replica, string>;
  environment: string;
  keys: string[];
  flags: FlagSpec[];
  /** Switches a flag in Unleash (the toggler's change source); errors are ignored. */
  toggleFlag?: (on: boolean) => Promise<void>;
  /** The harness's instance server (`/…/health` answers 200). */
  instanceUrl: string;
  /** Run length, ms: the heartbeat stop and the deregistration happen at fractions of it. */
  durationMs: number;
  clients?: number;
  watchers?: number;
  /** TTL of the TTL instances, seconds. */
  ttlSeconds?: number;
  log?: (line: string) => void;
}

/** The registry services the workload uses, and their instances. */
export const SERVICES = { ttl: "chaos-ttl", checked: "chaos-checked", churn: "chaos-churn" };

/** See the module comment. */
export class Workload {
  readonly #o: Required<Omit<WorkloadOptions, "toggleFlag" | "log">> & WorkloadOptions;
  /** Aborted when config, flag and churn traffic stops (before the final reads). */
  readonly #traffic = new AbortController();
  /** Aborted when heartbeats and watchers stop (after the final reads). */
  readonly #all = new AbortController();
  readonly #loops: Promise<void>[] = [];
  readonly #late: Promise<void>[] = [];
  /** TTL instance ids whose heartbeat loop was told to stop. */
  readonly #hbStop = new Set<string>();
  readonly #running = new Set<string>();

  constructor(opts: WorkloadOptions) {
    this.#o = { clients: 8, watchers: 3, ttlSeconds: 5, ...opts };
  }

  /** Starts every loop; returns at once. */
  start(): void {
    const o = this.#o;
    const t = this.#traffic.signal;
    for (let c = 0; c < o.clients; c++) {
      this.#loops.push(this.#guard(`client ${c}`, () => this.#client(c, t)));
    }
    this.#loops.push(this.#guard("flags", () => this.#flagLoop(t)));
    this.#loops.push(this.#guard("toggler", () => this.#toggler(t)));
    this.#loops.push(this.#guard("churn", () => this.#churn(t)));
    this.#loops.push(this.#guard("discover", () => this.#discoverLoop(t)));
    this.#loops.push(this.#guard("registry plan", () => this.#registryPlan(t)));
    for (let w = 0; w < o.watchers; w++) {
      this.#late.push(this.#guard(`watcher ${w}`, () => this.#watcher(w, this.#all.signal)));
    }
    this.#late.push(this.#guard("instances", () => this.#instances(this.#all.signal)));
  }

  /** Stops config, flag and churn traffic and waits for operations in flight to end. */
  async stopTraffic(): Promise<void> {
    this.#traffic.abort();
    await Promise.all(this.#loops);
  }

  /** Stops heartbeats and watchers (after the final reads) and waits for them. */
  async stopAll(): Promise<void> {
    this.#traffic.abort();
    this.#all.abort();
    await Promise.all([...this.#loops, ...this.#late]);
  }

  /** Names of the loops still running (for a stop that takes too long). */
  get running(): string[] {
    return [...this.#running];
  }

  /** A loop that must never end the run: an unexpected error is logged, the loop ends. */
  async #guard(name: string, fn: () => Promise<void>): Promise<void> {
    this.#running.add(name);
    try {
      await fn();
    } catch (err) {
      this.#o.log?.(`workload loop ${name} failed: ${(err as Error)?.stack ?? err}`);
    } finally {
      this.#running.delete(name);
    }
  }

  #url(r: Replica): string {
    return this.#o.urls[r];
  }

  // ---------------------------------------------------------------------------------------
  // configuration

  /**
   * Creates every key once (through replica a, else b) so the loops start from values; these
   * writes are recorded as client -1.
   */
  async seedKeys(): Promise<void> {
    for (const key of this.#o.keys) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const w = await this.#create(-1, key, REPLICAS[attempt % 2], new Map());
        if (w.outcome === "ok" || w.status === 409) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async #client(c: number, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 1_000_003 + c);
    /** Per key: versions this client knows the value of (its writes and its reads). */
    const known = new Map<string, Map<number, unknown>>();
    while (!signal.aborted) {
      const key = rng.pick(o.keys);
      const r = rng.pick(REPLICAS);
      const k = known.get(key) ?? new Map<number, unknown>();
      known.set(key, k);
      const op = rng.weighted({
        read: 30,
        put: 14,
        cas: 14,
        create: 5,
        delete: 4,
        rollback: 5,
        bulk: 10,
        list: 3,
      });
      switch (op) {
        case "read":
          await this.#read(c, key, r, k);
          break;
        case "put":
          await this.#put(c, key, r, k);
          break;
        case "cas": {
          const read = await this.#read(c, key, r, k);
          if (read.outcome !== "ok") break;
          if (read.absent) await this.#create(c, key, r, k);
          else await this.#put(c, key, rng.pick(REPLICAS), k, read.version);
          break;
        }
        case "create":
          await this.#create(c, key, r, k);
          break;
        case "delete":
          await this.#delete(c, key, r);
          break;
        case "rollback": {
          const versions = [...k.keys()];
          if (versions.length === 0) await this.#read(c, key, r, k);
          else await this.#rollback(c, key, r, rng.pick(versions), k);
          break;
        }
        case "bulk":
          await this.#bulk(c, rng.shuffle([...o.keys]).slice(0, rng.int(2, o.keys.length)), r);
          break;
        case "list":
          await this.#other("config.list", r, `/api/v1/config?environment=${o.environment}`);
          break;
      }
      await abortableSleep(rng.int(80, 220), signal);
    }
  }

  /** Remembers `version` → `value` for rollbacks (at most the 32 newest versions). */
  #learn(known: Map<number, unknown>, version: unknown, value: unknown): void {
    if (typeof version !== "number" || value === undefined) return;
    known.set(version, value);
    if (known.size > 32) known.delete(Math.min(...known.keys()));
  }

  #writeRecord(
    rec: Omit<ConfigWrite, "kind" | "t1" | "environment" | "outcome" | "i"> & { i: number },
    a: Answer,
    known?: Map<number, unknown>,
  ): ConfigWrite {
    const o = this.#o;
    const out = outcomeOf(a);
    const version = out.outcome === "ok"
      ? (a.body as { version?: unknown } | null)?.version
      : undefined;
    const w = o.history.write<ConfigWrite>({
      kind: "config.write",
      ...rec,
      t1: o.now(),
      environment: o.environment,
      ...out,
      ...(typeof version === "number" ? { version } : {}),
    });
    if (known && w.op !== "delete" && w.value !== undefined) this.#learn(known, w.version, w.value);
    return w;
  }

  async #create(c: number, key: string, r: Replica, known: Map<number, unknown>) {
    const o = this.#o;
    const i = o.history.reserve();
    const value = { w: i, c };
    const t0 = o.now();
    const a = await call(this.#url(r), "POST", "/api/v1/config", {
      body: { key, value, environment: o.environment },
    });
    return this.#writeRecord({ i, t0, op: "create", key, replica: r, client: c, value }, a, known);
  }

  async #put(c: number, key: string, r: Replica, known: Map<number, unknown>, ifMatch?: number) {
    const o = this.#o;
    const i = o.history.reserve();
    const value = { w: i, c };
    const t0 = o.now();
    const a = await call(this.#url(r), "PUT", `/api/v1/config/${key}`, {
      body: { value, environment: o.environment },
      headers: ifMatch === undefined ? {} : { "if-match": `"g${ifMatch}"` },
    });
    return this.#writeRecord(
      {
        i,
        t0,
        op: ifMatch === undefined ? "put" : "cas",
        key,
        replica: r,
        client: c,
        value,
        ...(ifMatch === undefined ? {} : { if_match: ifMatch }),
      },
      a,
      known,
    );
  }

  async #delete(c: number, key: string, r: Replica) {
    const o = this.#o;
    const i = o.history.reserve();
    const t0 = o.now();
    const a = await call(
      this.#url(r),
      "DELETE",
      `/api/v1/config/${key}?environment=${o.environment}`,
    );
    return this.#writeRecord({ i, t0, op: "delete", key, replica: r, client: c }, a);
  }

  async #rollback(c: number, key: string, r: Replica, to: number, known: Map<number, unknown>) {
    const o = this.#o;
    const i = o.history.reserve();
    const t0 = o.now();
    const value = known.get(to);
    const a = await call(this.#url(r), "POST", `/api/v1/config/${key}/rollback`, {
      body: { environment: o.environment, version: to },
    });
    return this.#writeRecord(
      { i, t0, op: "rollback", key, replica: r, client: c, to, value },
      a,
      known,
    );
  }

  async #read(c: number, key: string, r: Replica, known: Map<number, unknown>) {
    const o = this.#o;
    const t0 = o.now();
    const a = await call(this.#url(r), "GET", `/api/v1/config/${key}?environment=${o.environment}`);
    const base = { kind: "config.read" as const, t0, environment: o.environment, key, replica: r };
    let rec: Omit<ConfigRead, "i" | "t1" | "kind" | "t0" | "environment" | "key" | "replica">;
    if (a.error !== undefined) rec = { client: c, outcome: "info", error: a.error };
    else if (a.status === 200) {
      const b = a.body as { version?: number; value?: unknown };
      rec = { client: c, outcome: "ok", status: 200, version: b.version, value: b.value };
      if (a.headers.get("x-config-stale") === "true") rec.stale = true;
      this.#learn(known, b.version, b.value);
    } else if (a.status === 404) rec = { client: c, outcome: "ok", status: 404, absent: true };
    else {
      rec = {
        client: c,
        outcome: a.status < 500 ? "fail" : "info",
        status: a.status,
        error: problemOf(a),
      };
    }
    return o.history.write<ConfigRead>({ ...base, ...rec, t1: o.now() });
  }

  async #bulk(c: number, keys: string[], r: Replica) {
    const o = this.#o;
    const t0 = o.now();
    const a = await call(this.#url(r), "POST", "/api/v1/config/bulk", {
      body: { keys, environment: o.environment },
    });
    const out = outcomeOf(a);
    o.history.write<ConfigBulk>({
      kind: "config.bulk",
      t0,
      t1: o.now(),
      environment: o.environment,
      replica: r,
      client: c,
      keys,
      ...out,
      ...(out.outcome === "ok" ? { values: a.body as Record<string, unknown> } : {}),
      ...(a.headers?.get("x-config-stale") === "true" ? { stale: true } : {}),
    });
  }

  /** A read whose answer only counts for availability (`other` records). */
  async #other(name: string, r: Replica, path: string): Promise<Answer> {
    const o = this.#o;
    const t0 = o.now();
    const a = await call(this.#url(r), "GET", path);
    const out = outcomeOf(a);
    // A 404 of an existing route is an answer (an unknown service), not a failure to answer.
    o.history.write<OtherOp>({ kind: "other", name, t0, t1: o.now(), replica: r, ...out });
    return a;
  }

  // ---------------------------------------------------------------------------------------
  // SSE watchers

  async #watcher(w: number, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 31 + 5_000 + w);
    let last: string | null = null;
    while (!signal.aborted) {
      const r = rng.pick(REPLICAS);
      last = await this.#watchOnce(w, r, last, rng.int(8_000, 30_000), signal);
      await abortableSleep(rng.int(100, 1_000), signal);
    }
  }

  /**
   * One connection: records `sse.connect` and each event until the stream ends, stalls for
   * {@link SSE_IDLE_MS}, `rotateMs` passes, or `signal` aborts. Returns the last event id.
   */
  async #watchOnce(
    w: number,
    r: Replica,
    lastId: string | null,
    rotateMs: number,
    signal: AbortSignal,
  ): Promise<string | null> {
    const o = this.#o;
    const ctl = new AbortController();
    const abort = () => ctl.abort();
    signal.addEventListener("abort", abort, { once: true });
    let idle = setTimeout(abort, REQUEST_TIMEOUT_MS);
    const rotate = setTimeout(abort, rotateMs);
    // Every wait below races this as well as passing the signal to fetch: in chaos runs an
    // aborted fetch's body read was seen to stay pending for good (not reproduced in a small
    // script), which kept the watchers from rotating and the run from ending.
    const stopped = new Promise<"stopped">((resolve) =>
      ctl.signal.addEventListener("abort", () => resolve("stopped"), { once: true })
    );
    const t0 = o.now();
    let last = lastId;
    try {
      let res: Response;
      try {
        const answering = fetch(
          `${this.#url(r)}/api/v1/config/watch?environment=${o.environment}`,
          {
            headers: lastId === null ? {} : { "last-event-id": lastId },
            signal: ctl.signal,
          },
        );
        const answer = await Promise.race([answering, stopped]);
        if (answer === "stopped") {
          answering.then((late) => late.body?.cancel()).catch(() => {});
          throw new DOMException("no answer before the abort", "AbortError");
        }
        res = answer;
      } catch (err) {
        this.#sseConnect(w, r, lastId, t0, { outcome: "info", error: errorText(err) });
        return last;
      }
      if (res.status !== 200) {
        const body = await res.text().catch(() => "");
        const a: Answer = { status: res.status, body: parseJson(body), headers: res.headers };
        this.#sseConnect(w, r, lastId, t0, outcomeOf(a));
        return last;
      }
      this.#sseConnect(w, r, lastId, t0, { outcome: "ok", status: 200 });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      try {
        while (true) {
          clearTimeout(idle);
          idle = setTimeout(abort, SSE_IDLE_MS);
          const next = await Promise.race([reader.read(), stopped]);
          if (next === "stopped" || next.done) break;
          const value = next.value;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const frame = parseFrame(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
            if (frame.id === undefined || frame.data === undefined) continue;
            const d = JSON.parse(frame.data) as { key: string; version: number; type: string };
            const t = o.now();
            o.history.write<SseEvent>({
              kind: "sse.event",
              t0: t,
              t1: t,
              watcher: w,
              replica: r,
              environment: o.environment,
              id: frame.id,
              type: frame.event ?? d.type,
              key: d.key,
              version: d.version,
            });
            last = frame.id;
          }
        }
      } catch {
        /* reset, killed replica, our own abort: reconnect */
      } finally {
        reader.cancel().catch(() => {});
      }
      return last;
    } finally {
      clearTimeout(idle);
      clearTimeout(rotate);
      signal.removeEventListener("abort", abort);
    }
  }

  #sseConnect(
    w: number,
    r: Replica,
    lastId: string | null,
    t0: number,
    out: { outcome: Outcome; status?: number; error?: string },
  ): void {
    const o = this.#o;
    o.history.write<SseConnect>({
      kind: "sse.connect",
      t0,
      t1: o.now(),
      watcher: w,
      replica: r,
      environment: o.environment,
      last_event_id: lastId,
      ...out,
    });
  }

  // ---------------------------------------------------------------------------------------
  // registry

  /** One registration attempt through `r`, recorded. */
  async #register(service: string, id: string, r: Replica, ttl?: number): Promise<Outcome> {
    const o = this.#o;
    const t0 = o.now();
    const a = await call(this.#url(r), "POST", "/api/v1/registry/register", {
      body: {
        service_name: service,
        service_url: o.instanceUrl,
        metadata: { instance_id: id },
        ...(ttl ? { ttl_seconds: ttl } : {}),
      },
    });
    const out = outcomeOf(a);
    o.history.write<RegistryOp>({
      kind: "registry.register",
      t0,
      t1: o.now(),
      replica: r,
      service,
      instance_id: id,
      ...(ttl ? { ttl_seconds: ttl } : {}),
      healthy_target: true,
      ...out,
    });
    return out.outcome;
  }

  async #registryCall(
    kind: "registry.deregister" | "registry.heartbeat",
    service: string,
    id: string,
    r: Replica,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<Outcome> {
    const o = this.#o;
    const t0 = o.now();
    const path = kind === "registry.heartbeat" ? "heartbeat" : "deregister";
    const a = await call(this.#url(r), "POST", `/api/v1/registry/${path}`, {
      body: { service_name: service, instance_id: id },
      timeoutMs,
    });
    const out = outcomeOf(a);
    o.history.write<RegistryOp>({
      kind,
      t0,
      t1: o.now(),
      replica: r,
      service,
      instance_id: id,
      ...out,
    });
    return out.outcome;
  }

  /** Retries `attempt` (alternating replicas) until it is acknowledged or refused. */
  async #untilAnswered(
    attempt: (r: Replica) => Promise<Outcome>,
    signal: AbortSignal,
    deadlineMs = 60_000,
  ): Promise<Outcome> {
    const end = this.#o.now() + deadlineMs;
    for (let n = 0;; n++) {
      const out = await attempt(REPLICAS[n % 2]);
      if (out !== "info" || this.#o.now() > end) return out;
      if (!(await abortableSleep(500, signal))) return out;
    }
  }

  /**
   * Registers the TTL and health-checked instances, then keeps each TTL instance alive with
   * its own heartbeat loop until {@link stopAll} (or until its heartbeat is stopped).
   */
  async #instances(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const ttlIds = [0, 1, 2].map((n) => `ttl-${n}`);
    const checkedIds = [0, 1, 2].map((n) => `checked-${n}`);
    for (const id of checkedIds) {
      await this.#untilAnswered((r) => this.#register(SERVICES.checked, id, r), signal);
    }
    const loops = ttlIds.map(async (id, n) => {
      await this.#untilAnswered(
        (r) => this.#register(SERVICES.ttl, id, r, o.ttlSeconds),
        signal,
      );
      const hbRng = new Rng(o.seed * 17 + 9_100 + n);
      while (!signal.aborted && !this.#hbStop.has(id)) {
        const r = hbRng.pick(REPLICAS);
        const out = await this.#registryCall(
          "registry.heartbeat",
          SERVICES.ttl,
          id,
          r,
          HEARTBEAT_TIMEOUT_MS,
        );
        // As a client behind a load balancer would: the other replica at once.
        if (out === "info") {
          await this.#registryCall(
            "registry.heartbeat",
            SERVICES.ttl,
            id,
            r === "a" ? "b" : "a",
            HEARTBEAT_TIMEOUT_MS,
          );
        }
        await abortableSleep(hbRng.int(900, 1_400), signal);
      }
      if (this.#hbStop.has(id)) {
        // Written by the loop itself, after its last heartbeat: none follows this record.
        const t = o.now();
        o.history.write<HeartbeatStop>({
          kind: "registry.heartbeat_stop",
          t0: t,
          t1: t,
          service: SERVICES.ttl,
          instance_id: id,
        });
        o.log?.(`heartbeats of ${SERVICES.ttl}/${id} stopped`);
      }
    });
    await Promise.all(loops);
  }

  /** Stops one TTL instance's heartbeats (at 45 %) and deregisters one checked instance (35 %). */
  async #registryPlan(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const deregAt = o.durationMs * 0.35;
    const stopAt = o.durationMs * 0.45;
    if (!(await abortableSleep(Math.max(0, deregAt - o.now()), signal))) return;
    await this.#untilAnswered(
      (r) => this.#registryCall("registry.deregister", SERVICES.checked, "checked-0", r),
      signal,
    );
    if (!(await abortableSleep(Math.max(0, stopAt - o.now()), signal))) return;
    this.#hbStop.add("ttl-0");
  }

  /** Short-lived instances: register, wait a few seconds, deregister; a new id each time. */
  async #churn(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 13 + 7_000);
    for (let n = 0; !signal.aborted; n++) {
      if (!(await abortableSleep(rng.int(3_000, 7_000), signal))) return;
      const id = `churn-${n}`;
      const reg = await this.#register(SERVICES.churn, id, rng.pick(REPLICAS));
      if (reg === "fail") continue;
      if (!(await abortableSleep(rng.int(2_000, 6_000), signal))) return;
      for (let attempt = 0; attempt < 5; attempt++) {
        const out = await this.#registryCall(
          "registry.deregister",
          SERVICES.churn,
          id,
          rng.pick(REPLICAS),
        );
        if (out !== "info") break;
        if (!(await abortableSleep(1_000, signal))) return;
      }
    }
  }

  async #discoverLoop(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 19 + 11_000);
    while (await abortableSleep(rng.int(700, 1_300), signal)) {
      const service = rng.pick([SERVICES.ttl, SERVICES.checked]);
      await this.#other(
        "registry.discover",
        rng.pick(REPLICAS),
        `/api/v1/registry/discover/${service}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------
  // flags

  async #flagLoop(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const rng = new Rng(o.seed * 23 + 13_000);
    while (await abortableSleep(rng.int(120, 260), signal)) {
      const f = rng.pick(o.flags);
      const r = rng.pick(REPLICAS);
      const t0 = o.now();
      const a = await call(this.#url(r), "POST", "/api/v1/feature-flags/evaluate", {
        body: {
          flag_name: f.name,
          user_id: `user-${rng.int(1, 500)}`,
          default_value: f.defaultValue,
          environment: o.environment,
        },
      });
      const out = outcomeOf(a);
      const b = out.outcome === "ok" ? a.body as { value?: unknown; reason?: string } : undefined;
      o.history.write<FlagEval>({
        kind: "flag.eval",
        t0,
        t1: o.now(),
        replica: r,
        flag: f.name,
        ...out,
        ...(b ? { value: b.value, ...(b.reason === undefined ? {} : { reason: b.reason }) } : {}),
      });
    }
  }

  /** Switches the toggle flag every 12–24 s, so the flag topic carries changes. */
  async #toggler(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    if (!o.toggleFlag) return;
    const rng = new Rng(o.seed * 29 + 15_000);
    let on = true;
    while (await abortableSleep(rng.int(12_000, 24_000), signal)) {
      on = !on;
      await o.toggleFlag(on).catch((err) => o.log?.(`toggling the flag failed: ${err}`));
    }
  }
}

/** One SSE frame's fields (`data` lines joined with "\n"). */
export function parseFrame(block: string): { id?: string; event?: string; data?: string } {
  const out: { id?: string; event?: string; data?: string } = {};
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") out.id = value;
    else if (field === "event") out.event = value;
    else if (field === "data") out.data = out.data === undefined ? value : `${out.data}\n${value}`;
  }
  return out;
}

// -----------------------------------------------------------------------------------------
// Kafka

/**
 * A consumer of the run's config and flag topics from the beginning, recording `kafka.event`.
 * A consumer that crashes for good (Kafka away longer than its retries) is replaced by a new
 * one in the same group, which resumes from the committed offsets; redeliveries are recorded
 * again (the checker deduplicates by `event_id`).
 */
export class KafkaTail {
  readonly #kafka: Kafka;
  readonly #topics: { config: string; flags: string };
  readonly #groupId: string;
  readonly #history: HistoryWriter;
  readonly #now: () => number;
  readonly #log?: (line: string) => void;
  readonly #stop = new AbortController();
  /** Replaces the current consumer (resolved by a crash, a stall or {@link stop}). */
  #restart: () => void = () => {};
  /** Next offset to read, per `topic/partition`. */
  readonly #next = new Map<string, bigint>();
  #loop: Promise<void> | null = null;
  readonly #joined = Promise.withResolvers<void>();
  /** Consumers started (1 after the first). */
  consumers = 0;

  constructor(opts: {
    bootstrap: string;
    topics: { config: string; flags: string };
    groupId: string;
    history: HistoryWriter;
    now: () => number;
    log?: (line: string) => void;
  }) {
    this.#kafka = createKafka(opts.bootstrap, `chaos-${opts.groupId}`);
    this.#topics = opts.topics;
    this.#groupId = opts.groupId;
    this.#history = opts.history;
    this.#now = opts.now;
    this.#log = opts.log;
  }

  /** Starts consuming; resolves once the first consumer joined its group (or after 30 s). */
  async start(): Promise<void> {
    this.#loop = this.#run();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#joined.promise,
      new Promise((r) => timer = setTimeout(r, 30_000)),
    ]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#restart();
    await this.#loop;
  }

  /**
   * Waits until every partition of both topics is read to its end as the broker reports it,
   * replacing a consumer that makes no progress for 15 s. Returns whether it caught up within
   * `timeoutMs`.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    let progress = Date.now();
    let lastBehind = Infinity;
    while (Date.now() < end) {
      const behind = await this.#behind().catch(() => Infinity);
      if (behind === 0) return true;
      if (behind < lastBehind) {
        lastBehind = behind;
        progress = Date.now();
      } else if (Date.now() - progress > 15_000) {
        this.#log?.(`kafka consumer stalled ${behind} messages behind: replacing it`);
        this.#restart();
        progress = Date.now();
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return false;
  }

  /** Messages on the topics not yet read (the sum over partitions of end − next). */
  async #behind(): Promise<number> {
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      let behind = 0;
      for (const topic of Object.values(this.#topics)) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          const next = this.#next.get(`${topic}/${p.partition}`) ?? 0n;
          const high = BigInt(p.high);
          if (high > next) behind += Number(high - next);
        }
      }
      return behind;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const consumer = this.#kafka.consumer({
        groupId: this.#groupId,
        maxWaitTimeInMs: 500,
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 3_000 },
      });
      this.consumers++;
      const replaced = Promise.withResolvers<void>();
      this.#restart = () => replaced.resolve();
      consumer.on(consumer.events.CRASH, (e) => {
        this.#log?.(
          `kafka consumer crashed (${e.payload.error?.message}); restart: ${e.payload.restart}`,
        );
        if (!e.payload.restart) replaced.resolve();
      });
      consumer.on(consumer.events.GROUP_JOIN, () => this.#joined.resolve());
      try {
        await consumer.connect();
        await consumer.subscribe({
          topics: [this.#topics.config, this.#topics.flags],
          fromBeginning: true,
        });
        await consumer.run({
          eachMessage: ({ topic, partition, message }) => {
            this.#record(topic, partition, message.offset, message.value, message.headers);
            return Promise.resolve();
          },
        });
        await replaced.promise;
      } catch (err) {
        this.#log?.(`kafka consumer: ${(err as Error)?.message ?? err}`);
      } finally {
        await consumer.disconnect().catch(() => {});
      }
      await abortableSleep(1_000, signal);
    }
  }

  #record(
    topic: string,
    partition: number,
    offset: string,
    value: Uint8Array | null,
    headers: Record<string, unknown> | undefined,
  ): void {
    const slot = `${topic}/${partition}`;
    const next = BigInt(offset) + 1n;
    if (next > (this.#next.get(slot) ?? 0n)) this.#next.set(slot, next);
    let v: Record<string, unknown> = {};
    try {
      v = value ? JSON.parse(new TextDecoder().decode(value)) : {};
    } catch { /* not JSON: recorded with what the headers say */ }
    const t = this.#now();
    const str = (x: unknown) => (typeof x === "string" ? x : undefined);
    if (topic === this.#topics.config) {
      const header = headers?.event_id;
      const eventId = str(v.event_id) ??
        (header === undefined
          ? `${slot}@${offset}`
          : new TextDecoder().decode(header as Uint8Array));
      this.#history.write<KafkaEvent>({
        kind: "kafka.event",
        t0: t,
        t1: t,
        topic: "config",
        partition,
        offset,
        event_id: eventId,
        type: str(v.type) ?? "",
        ...(str(v.key) === undefined ? {} : { key: str(v.key) }),
        ...(str(v.environment) === undefined ? {} : { environment: str(v.environment) }),
        ...(typeof v.version === "number" ? { version: v.version } : {}),
      });
    } else {
      // Flag events carry no id: one change of one flag in one environment at one time is
      // one event, so those fields name it (a redelivery repeats them).
      const flag = str(v.flag) ?? "";
      const change = str(v.change) ?? "";
      this.#history.write<KafkaEvent>({
        kind: "kafka.event",
        t0: t,
        t1: t,
        topic: "flags",
        partition,
        offset,
        event_id: `${v.environment}:${flag}:${change}:${v.at}`,
        type: change,
        key: flag,
        ...(str(v.environment) === undefined ? {} : { environment: str(v.environment) }),
      });
    }
  }
}
