/**
 * `deno task chaos`: a Jepsen-style run against the real local stack. Starts two replicas of
 * the service on their own PostgreSQL database, Kafka topics, ZooKeeper base path and Unleash
 * flags, runs the workload (tests/chaos/workload.ts) under the nemesis (tests/chaos/nemesis.ts)
 * for `--duration` seconds, heals everything, records the final state, and judges the history
 * with tests/chaos/checker.ts.
 *
 *     eval "$(bash scripts/stack.sh env)"
 *     deno task chaos [--duration S] [--seed N] [--overlap] [--out DIR]
 *     deno task chaos --check DIR/history.jsonl
 *
 * Exit status: 0 no anomaly; 1 an anomaly, or the run failed under way; 2 the run could not
 * start (stack variables unset, a stack server down, bad options). The stack is left all up.
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { log } from "../../lib/log.ts";
import { rid, tempDatabase, tempTopic } from "../_pg.ts";
import { tempDir } from "../_helpers.ts";
import { dropBasePath, openZk } from "../_zk.ts";
import { rollout, UnleashAdmin } from "../_unleash.ts";
import { check, formatReport } from "./checker.ts";
import { Cluster } from "./cluster.ts";
import {
  type FinalHistory,
  type FinalRead,
  type FinalRegistry,
  type HistoryRecord,
  HistoryWriter,
  readHistory,
  type Replica,
  type ReplicaExit,
  type RunEnd,
  type RunStart,
} from "./history.ts";
import { downBackends, ensureStackUp, Nemesis } from "./nemesis.ts";
import { abortableSleep, type FlagSpec, KafkaTail, SERVICES, Workload } from "./workload.ts";

const USAGE = `usage: deno task chaos [--duration S] [--seed N] [--overlap] [--out DIR]
       deno task chaos --check HISTORY.jsonl [--out DIR]

  --duration S   seconds of workload under faults (default 180)
  --seed N       seed of the workload and the fault schedule (default 1)
  --overlap      let two faults overlap (on different targets)
  --out DIR      history.jsonl, report.json and the replicas' logs (default test-results/chaos)
  --check FILE   only judge a saved history (report.json goes to --out, else beside FILE)`;

const REQUIRED_VARS = [
  "DATABASE_URL",
  "REDIS_HOST",
  "ZOOKEEPER_HOSTS",
  "KAFKA_BOOTSTRAP_SERVERS",
  "UNLEASH_URL",
  "UNLEASH_API_TOKEN",
  "UNLEASH_CLIENT_TOKENS",
];

/** The replicas' ZooKeeper session timeout (s): a pause of 1.5× that expires the session. */
const SESSION_TIMEOUT_S = 6;
/** Seconds between health checks of an instance. */
const HEALTH_INTERVAL_S = 2;
const ENVIRONMENT = "development";
const KEYS = Array.from({ length: 8 }, (_, i) => `chaos.hot.${i}`);
/** What run.start documents (see tests/chaos/history.ts): the cross-replica read bound, and
 * how long after a fault's end its backend's 503s still count as documented. */
const REPLICA_LAG_MS = 1_000;
const RECOVERY_GRACE_MS = 10_000;

export interface RunOptions {
  durationS: number;
  seed: number;
  overlap: boolean;
  out: string;
  check?: string;
}

class UsageError extends Error {}
/** The run could not start for a reason outside the harness (exit 2). */
class CannotStart extends Error {}
class Interrupted extends Error {}

/** Parses the command line. @throws {UsageError} naming the bad option. */
export function parseOptions(args: string[]): RunOptions {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        duration: { type: "string", default: "180" },
        seed: { type: "string", default: "1" },
        overlap: { type: "boolean", default: false },
        out: { type: "string" },
        check: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (v.help) throw new UsageError("");
  const durationS = Number(v.duration);
  if (!Number.isFinite(durationS) || durationS < 20) {
    throw new UsageError(`--duration must be a number of seconds ≥ 20 (got "${v.duration}")`);
  }
  const seed = Number(v.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new UsageError(`--seed must be a non-negative integer (got "${v.seed}")`);
  }
  return {
    durationS,
    seed,
    overlap: v.overlap!,
    out: v.out ?? (v.check ? dirname(v.check) : "test-results/chaos"),
    check: v.check,
  };
}

/** Prints a progress line with the run time. */
function say(line: string, now?: () => number): void {
  const at = now ? `[+${(now() / 1000).toFixed(1)}s] ` : "";
  console.log(`chaos: ${at}${line}`);
}

/** Judges `records`, prints the report and writes report.json; returns whether it is clean. */
async function judge(records: HistoryRecord[], out: string, historyPath: string) {
  const report = check(records);
  console.log(formatReport(report));
  const reportPath = join(out, "report.json");
  await Deno.writeTextFile(reportPath, JSON.stringify(report, null, 2) + "\n");
  console.log(`history: ${historyPath}`);
  console.log(`report:  ${reportPath}`);
  return report.ok;
}

async function checkOnly(o: RunOptions): Promise<number> {
  let records: HistoryRecord[];
  try {
    records = await readHistory(o.check!);
  } catch (err) {
    console.error(`chaos: cannot read ${o.check}: ${(err as Error).message}`);
    return 2;
  }
  await Deno.mkdir(o.out, { recursive: true });
  return (await judge(records, o.out, o.check!)) ? 0 : 1;
}

/** Checks that the stack is there before anything is created on it. @throws {CannotStart} */
async function preflight(): Promise<void> {
  const missing = REQUIRED_VARS.filter((v) => !Deno.env.get(v));
  if (missing.length > 0) {
    throw new CannotStart(
      `${missing.join(", ")} not set. The chaos run needs the local stack: ` +
        `bash scripts/stack.sh up && eval "$(bash scripts/stack.sh env)"`,
    );
  }
  const down = await downBackends();
  if (down.length > 0) {
    throw new CannotStart(
      `stack servers down: ${down.join(", ")} (bash scripts/stack.sh up, then status)`,
    );
  }
}

/** A server for the instances the workload registers: `…/health` is 200, anything else 404. */
function instanceServer() {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    return path.endsWith("/health")
      ? new Response("ok", { status: 200 })
      : new Response("not provided", { status: 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

/** A JSON GET (or POST) through a replica, retried on no answer or 5xx for up to `ms`. */
async function fetchJson(
  url: string,
  init: RequestInit = {},
  ms = 30_000,
): Promise<{ status: number; body: unknown }> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      const body = text ? JSON.parse(text) : null;
      if (res.status < 500 || Date.now() > end) return { status: res.status, body };
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Waits until both replicas answer `/ready` 200 and `/health` with every backend up.
 * @throws {Error} naming what was still down after `timeoutMs`.
 */
async function waitRecovered(cluster: Cluster, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let last = "";
  while (Date.now() - t0 < timeoutMs) {
    const states: string[] = [];
    for (const r of ["a", "b"] as Replica[]) {
      try {
        const ready = await fetch(`${cluster.url(r)}/ready`, {
          signal: AbortSignal.timeout(5_000),
        });
        await ready.body?.cancel();
        const h = await fetch(`${cluster.url(r)}/health`, { signal: AbortSignal.timeout(5_000) });
        const body = await h.json() as { backends?: Record<string, { status: string }> };
        const down = Object.entries(body.backends ?? {})
          .filter(([, b]) => b.status !== "up" && b.status !== "disabled").map(([n]) => n);
        if (ready.status !== 200) down.push("ready");
        if (down.length > 0) states.push(`${r}: ${down.join(",")} not up`);
      } catch (err) {
        states.push(`${r}: ${(err as Error).message}`);
      }
    }
    if (states.length === 0) return Date.now() - t0;
    last = states.join("; ");
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the replicas did not recover in ${timeoutMs} ms: ${last}`);
}

/** Waits until every flag evaluates from Unleash's definitions (not FLAG_NOT_FOUND) on both. */
async function waitFlags(cluster: Cluster, flags: FlagSpec[], timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const r of ["a", "b"] as Replica[]) {
    for (const f of flags) {
      for (;;) {
        const a = await fetchJson(`${cluster.url(r)}/api/v1/feature-flags/evaluate`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ flag_name: f.name, default_value: f.defaultValue }),
        });
        if (a.status === 200 && (a.body as { reason?: string }).reason !== "ERROR") break;
        if (Date.now() > end) {
          throw new Error(`flag ${f.name} not served by replica ${r}: ${JSON.stringify(a.body)}`);
        }
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  }
}

/** Creates the run's flags in Unleash (development): a 50 % rollout, variants, a toggle. */
async function createFlags(admin: UnleashAdmin): Promise<{ flags: FlagSpec[]; toggle: string }> {
  const variant = (name: string) => ({
    name,
    weight: 500,
    weightType: "variable",
    stickiness: "default",
    payload: { type: "string", value: name },
  });
  const split = await admin.flag("chaos-rollout", { [ENVIRONMENT]: [rollout(50, "userId")] });
  const colours = await admin.flag("chaos-variant", {
    [ENVIRONMENT]: [{
      name: "flexibleRollout",
      parameters: { rollout: "100", stickiness: "default", groupId: "v" },
      variants: [variant("blue"), variant("red")],
    }],
  });
  const toggle = await admin.flag("chaos-toggle", { [ENVIRONMENT]: [{ name: "default" }] });
  return {
    flags: [
      { name: split, defaultValue: false },
      { name: colours, defaultValue: "none" },
      { name: toggle, defaultValue: false },
    ],
    toggle,
  };
}

/** The state after recovery: final.read, final.history, final.registry records. */
async function finalState(
  cluster: Cluster,
  history: HistoryWriter,
  now: () => number,
  basePath: string,
): Promise<void> {
  const replicas: Replica[] = ["a", "b"];
  for (const key of KEYS) {
    for (const r of replicas) {
      const t0 = now();
      let status = 0;
      let body: { version?: number; value?: unknown } = {};
      try {
        const a = await fetchJson(
          `${cluster.url(r)}/api/v1/config/${key}?environment=${ENVIRONMENT}`,
        );
        status = a.status;
        body = (a.body ?? {}) as typeof body;
      } catch { /* no answer in 30 s: status 0 */ }
      history.write<FinalRead>({
        kind: "final.read",
        t0,
        t1: now(),
        environment: ENVIRONMENT,
        key,
        replica: r,
        status,
        ...(status === 200 ? { version: body.version, value: body.value } : {}),
        ...(status === 404 ? { absent: true } : {}),
      });
    }
  }
  for (const key of KEYS) {
    const t0 = now();
    const versions: FinalHistory["versions"] = [];
    const limit = 1000;
    for (let offset = 0;; offset += limit) {
      const a = await fetchJson(
        `${cluster.url("a")}/api/v1/config/${key}/history?environment=${ENVIRONMENT}` +
          `&limit=${limit}&offset=${offset}`,
      );
      if (a.status !== 200) throw new Error(`history of ${key}: HTTP ${a.status}`);
      const page = a.body as { version: number; change_type: string; value: unknown }[];
      for (const h of page) {
        versions.push({
          version: h.version,
          type: h.change_type,
          ...(h.value === null ? {} : { value: h.value }),
        });
      }
      if (page.length < limit) break;
    }
    history.write<FinalHistory>({
      kind: "final.history",
      t0,
      t1: now(),
      environment: ENVIRONMENT,
      key,
      versions,
    });
  }
  const zk = await openZk();
  try {
    for (const service of Object.values(SERVICES)) {
      const t0 = now();
      const znodes = (await zk.getChildren(`${basePath}/${service}`)).sort();
      const discover = {} as Record<Replica, string[]>;
      const listed = {} as Record<Replica, Record<string, string>>;
      for (const r of replicas) {
        type Listing = { instances?: { instance_id: string; status: string }[] };
        const d = await fetchJson(`${cluster.url(r)}/api/v1/registry/discover/${service}`);
        discover[r] = ((d.body as Listing)?.instances ?? []).map((i) => i.instance_id).sort();
        const l = await fetchJson(`${cluster.url(r)}/api/v1/registry/services/${service}`);
        listed[r] = Object.fromEntries(
          ((l.body as Listing)?.instances ?? []).map((i) => [i.instance_id, i.status]),
        );
      }
      history.write<FinalRegistry>({
        kind: "final.registry",
        t0,
        t1: now(),
        service,
        znodes,
        discover,
        listed,
      });
    }
  } finally {
    zk.close();
  }
}

/**
 * Waits for `p`, at most `ms`: a client library that never finishes stopping (kafkajs after a
 * broker restart) must not keep the run from judging its history. Logs what it gave up on.
 */
async function within(
  p: Promise<unknown>,
  ms: number,
  what: string,
  note: (line: string) => void,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = await Promise.race([
    p.then(() => false, (err) => {
      note(`waiting for ${what}: ${err}`);
      return false;
    }),
    new Promise<boolean>((r) => timer = setTimeout(() => r(true), ms)),
  ]).finally(() => clearTimeout(timer));
  if (late) note(`gave up waiting for ${what} after ${ms} ms`);
}

/** Runs the whole chaos run; returns the exit status. */
async function chaosRun(o: RunOptions): Promise<number> {
  await preflight();
  await Deno.mkdir(o.out, { recursive: true });
  for (
    const f of ["history.jsonl", "report.json", "replica-a.log", "replica-b.log", "harness.log"]
  ) {
    await Deno.remove(join(o.out, f)).catch(() => {});
  }
  // Driver warnings of the harness's own clients (kafkajs while Kafka is stopped) go to a file.
  const harnessLog = await Deno.open(join(o.out, "harness.log"), { create: true, append: true });
  const enc = new TextEncoder();
  log.setSink((line) => harnessLog.writeSync(enc.encode(line + "\n")));
  const note = (line: string) => harnessLog.writeSync(enc.encode(`chaos: ${line}\n`));

  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) {
      say("still healing faults and cleaning up; the stack must be left up, please wait");
      return;
    }
    say("interrupted: healing every fault and cleaning up (this takes a little while)");
    interrupt.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const checkpoint = () => {
    if (interrupt.signal.aborted) throw new Interrupted("interrupted");
  };

  const runId = rid();
  const basePath = `/chaos-${runId}`;
  const cleanups: [string, () => Promise<unknown>][] = [];
  let cluster: Cluster | undefined;
  let nemesis: Nemesis | undefined;
  let workload: Workload | undefined;
  let kafka: KafkaTail | undefined;
  let history: HistoryWriter | undefined;
  /** The nemesis's lanes: each heals its own fault before it ends. */
  let faults: Promise<void> | undefined;
  let started = false;
  let code = 0;
  let start = performance.now();
  const now = () => Math.round((performance.now() - start) * 10) / 10;
  const historyPath = join(o.out, "history.jsonl");
  try {
    say(
      `seed ${o.seed}, ${o.durationS} s, overlap ${o.overlap ? "on" : "off"}, ` +
        `output in ${o.out}/ (run ${runId})`,
    );
    // Everything the run creates on the shared stack is its own, and removed at the end.
    const db = await tempDatabase();
    cleanups.push(["database", () => db.drop()]);
    const topics = {
      config: await tempTopic(),
      flags: await tempTopic(),
      registry: await tempTopic(),
    };
    for (const t of Object.values(topics)) cleanups.push([`topic ${t.topic}`, () => t.drop()]);
    cleanups.push(["znodes", () => dropBasePath(basePath)]);
    const admin = new UnleashAdmin();
    cleanups.push(["unleash flags", () => admin.cleanup()]);
    const { flags, toggle } = await createFlags(admin);
    // Removed when the run ends (tests/_helpers.ts), like every temporary path of the tests.
    const dataDir = tempDir("chaos-data-");
    const instances = instanceServer();
    cleanups.push(["instance server", () => instances.server.shutdown()]);
    checkpoint();

    cluster = new Cluster({
      outDir: o.out,
      dataDir,
      runId,
      env: {
        DATABASE_URL: db.url,
        ZOOKEEPER_BASE_PATH: basePath,
        ZOOKEEPER_SESSION_TIMEOUT: String(SESSION_TIMEOUT_S),
        KAFKA_TOPIC_CONFIG_UPDATES: topics.config.topic,
        FEATURE_FLAG_KAFKA_TOPIC: topics.flags.topic,
        REGISTRY_KAFKA_TOPIC: topics.registry.topic,
        UNLEASH_REFRESH_INTERVAL: "1",
        UNLEASH_SYNC_ENVIRONMENTS: ENVIRONMENT,
        UNLEASH_DISABLE_METRICS: "true",
        SERVICE_HEALTH_CHECK_INTERVAL: String(HEALTH_INTERVAL_S),
        HEALTH_CHECK_TIMEOUT: "1",
        HEALTH_CHECK_MAX_RETRIES: "1",
        SHUTDOWN_TIMEOUT: "5",
        LOG_LEVEL: "WARNING",
      },
    });
    say(`starting replicas a (${cluster.url("a")}) and b (${cluster.url("b")})`);
    await cluster.start();
    await waitRecovered(cluster, 90_000);
    await waitFlags(cluster, flags, 60_000);
    checkpoint();

    start = performance.now();
    history = new HistoryWriter(historyPath);
    history.write<RunStart>({
      kind: "run.start",
      t0: 0,
      t1: 0,
      seed: o.seed,
      duration_s: o.durationS,
      overlap: o.overlap,
      replica_lag_ms: REPLICA_LAG_MS,
      recovery_grace_ms: RECOVERY_GRACE_MS,
      environment: ENVIRONMENT,
      keys: KEYS,
    });
    started = true;
    kafka = new KafkaTail({
      bootstrap: Deno.env.get("KAFKA_BOOTSTRAP_SERVERS")!,
      topics: { config: topics.config.topic, flags: topics.flags.topic },
      groupId: `chaos-${runId}`,
      history,
      now,
      log: note,
    });
    await kafka.start();
    const durationMs = o.durationS * 1000;
    workload = new Workload({
      history,
      now,
      seed: o.seed,
      urls: { a: cluster.url("a"), b: cluster.url("b") },
      environment: ENVIRONMENT,
      keys: KEYS,
      flags,
      toggleFlag: (on) => admin.toggle(toggle, ENVIRONMENT, on),
      instanceUrl: instances.url,
      durationMs,
      log: note,
    });
    await workload.seedKeys();
    workload.start();
    nemesis = new Nemesis({
      cluster,
      history,
      now,
      seed: o.seed,
      endMs: durationMs,
      overlap: o.overlap,
      sessionTimeoutMs: SESSION_TIMEOUT_S * 1000,
      log: (line) => say(line, now),
    });
    // A replica that exits unasked is started again, as a restart policy would, with no fault
    // put on it meanwhile; the exit goes into the history, where the checker reports it.
    const restarts: Promise<void>[] = [];
    for (const r of ["a", "b"] as const) {
      const replica = cluster.get(r);
      const [n, h] = [nemesis, history];
      replica.onUnaskedExit = (s) => {
        const t0 = now();
        const how = s.signal ?? `exit code ${s.code}`;
        say(`replica ${r} exited unasked (${how}); starting it again`, now);
        restarts.push(
          n.hold(r, () => replica.start()).then(() => true, (err) => {
            say(`replica ${r} did not start again: ${(err as Error).message}`, now);
            return false;
          }).then((restarted) => {
            try {
              h.write<ReplicaExit>({
                kind: "replica.exit",
                t0,
                t1: now(),
                replica: r,
                code: s.code,
                signal: s.signal ?? null,
                restarted,
              });
            } catch { /* the run was interrupted and its history closed */ }
          }),
        );
      };
    }
    say("workload and nemesis running", now);
    const stopNemesis = new AbortController();
    faults = nemesis.run(AbortSignal.any([stopNemesis.signal, interrupt.signal]));
    await abortableSleep(durationMs - now(), interrupt.signal);
    checkpoint();

    say("stopping the workload, healing every fault", now);
    await workload.stopTraffic();
    stopNemesis.abort();
    await faults;
    await nemesis.healAll();
    await Promise.all(restarts);
    await cluster.heal();
    await ensureStackUp();
    const recovered = await waitRecovered(cluster, 120_000);
    say(`both replicas ready with every backend up (${recovered} ms)`, now);
    // Time to converge: tails, health checks (every HEALTH_INTERVAL_S), TTL expiry (5 s).
    await abortableSleep(15_000 + HEALTH_INTERVAL_S * 1000, interrupt.signal);
    checkpoint();
    await finalState(cluster, history, now, basePath);
    const drained = await kafka.drain(30_000);
    if (!drained) say("the Kafka consumer did not reach the end of its topics in 30 s", now);
    // Watchers get the last events a moment after the topics have them.
    await abortableSleep(3_000, interrupt.signal);
    history.write<RunEnd>({ kind: "run.end", t0: now(), t1: now() });
    const w = workload;
    await within(w.stopAll(), 30_000, "the workload's loops to end", note)
      .then(() => w.running.length > 0 && note(`loops still running: ${w.running.join(", ")}`));
    await within(kafka.stop(), 15_000, "the Kafka consumer to stop", note);
    say("run ended; stopping the replicas", now);
    await cluster.stop();
    history.close();
    history = undefined;
    code = (await judge(
        await readHistory(historyPath),
        o.out,
        historyPath,
      ))
      ? 0
      : 1;
  } catch (err) {
    if (err instanceof Interrupted) {
      code = 130;
    } else if (err instanceof CannotStart) {
      throw err;
    } else {
      console.error(`chaos: the run failed: ${(err as Error)?.stack ?? err}`);
      code = started ? 1 : 2;
    }
  } finally {
    // Whatever happened: traffic stopped, every fault healed, the stack all up, replicas
    // stopped, then what the run created removed.
    if (workload) await within(workload.stopAll(), 30_000, "the workload's loops to end", note);
    if (kafka) await within(kafka.stop(), 15_000, "the Kafka consumer to stop", note);
    // The lanes see the interrupt and heal their faults; a heal that failed is tried again.
    await faults?.catch((err) => console.error(`chaos: the nemesis failed: ${err}`));
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await nemesis?.healAll();
        await ensureStackUp();
        break;
      } catch (err) {
        console.error(`chaos: healing failed (attempt ${attempt + 1}): ${err}`);
        code ||= 1;
      }
    }
    await cluster?.stop().catch(() => {});
    history?.close();
    for (const [what, fn] of cleanups.reverse()) {
      await fn().catch((err) => console.error(`chaos: removing the ${what} failed: ${err}`));
    }
    const down = await downBackends().catch(() => ["unknown"]);
    if (down.length > 0) {
      console.error(`chaos: WARNING: stack servers left down: ${down.join(", ")}`);
      code ||= 1;
    }
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    log.setSink(null);
    harnessLog.close();
  }
  return code;
}

/** The CLI: see the module comment. */
export async function main(args: string[]): Promise<number> {
  let o: RunOptions;
  try {
    o = parseOptions(args);
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) console.error(`chaos: ${err.message}`);
      console.error(USAGE);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  if (o.check) return await checkOnly(o);
  try {
    return await chaosRun(o);
  } catch (err) {
    if (err instanceof CannotStart) {
      console.error(`chaos: cannot start: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
