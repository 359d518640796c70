/// <reference lib="deno.worker" />
/**
 * FlagActor: keeps each environment's flag definitions (from Unleash or the flags file),
 * persists them as last-known-good, caches them in Redis, publishes what changed, and
 * evaluates locally with our OpenFeature provider over Unleash's engine (its resolve methods
 * called directly, mapped as the SDK maps them: see `evaluateDirect`).
 *
 * State per environment: the definitions and how current they are. A poll with ETag runs
 * every source interval; a change is stored with its events in one transaction, then the
 * outbox is relayed to Kafka.
 */
import type { Redis } from "ioredis";
import type { Producer } from "kafkajs";
import type { EvaluationContext } from "@openfeature/server-sdk";
import { ErrorCode, OpenFeatureError } from "@openfeature/server-sdk";
import { serveActor } from "./actor_host.ts";
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { FlagCalls, HttpAnswer } from "./flags_protocol.ts";
import type { Settings } from "../lib/settings.ts";
import { log } from "../lib/log.ts";
import { settleWithin } from "../lib/async.ts";
import { BackendUnavailableError, NotFoundError, ValidationError } from "../lib/errors.ts";
import type { FieldError } from "../lib/errors.ts";
import { type Evaluation, type FeatureInterface, FlagSet } from "../lib/flags/engine.ts";
import {
  type EnvView,
  evaluateDirect,
  type Freshness,
  LocalUnleashProvider,
  type Resolution,
} from "../lib/flags/provider.ts";
import {
  bodyErrors,
  BooleanBody,
  BulkBody,
  defaultFlagEnvironment,
  EvaluateBody,
  flagEnvironments,
  OfrepBody,
  parseJsonBody,
  typeAndDefault,
} from "../lib/flags/api.ts";
import {
  FileFlagSource,
  type FlagSource,
  type MetricsBucket,
  UnleashFlagSource,
} from "../lib/flags/sources.ts";
import type { FlagEvent, FlagStore, Snapshot } from "../lib/flags/store.ts";
import { diffDocuments } from "../lib/flags/diff.ts";
import { flagsFilePath } from "../lib/backends/flags_file.ts";
import { deepFields } from "../lib/json.ts";

type Ctx = ActorContext<FlagCalls>;

interface EnvState {
  set: FlagSet;
  hash: string;
  etag: string | null;
  /** When the source last confirmed these definitions in this process (ms), or null. */
  confirmedAt: number | null;
  /** When the definitions were fetched from the source (ISO). */
  syncedAt: string;
  /** False while a change is known in memory but not yet stored (store down). */
  persisted: boolean;
  lastFull: number;
}

let s: Settings;
let source: FlagSource;
let store: FlagStore;
let redis: Redis | null = null;
/** Loaded with the Redis client (drivers load only when configured). */
let setIfNewer: typeof import("../lib/backends/redis.ts").setIfNewer = () => Promise.resolve(false);
let producer: Producer | null = null;
let monitor: BackendMonitor;
let provider: LocalUnleashProvider;
let environments: string[];
let defaultEnv: string;
const envs = new Map<string, EnvState>();
const syncing = new Map<string, Promise<EnvState>>();
/** How long a stop waits for syncs under way to store what they fetched. */
const STOP_DRAIN_MS = 3_000;
let staleMs = 300_000;
let relayDelay = 0;
let relayRunning = false;
let metrics = new Map<string, MetricsBucket["toggles"]>();
let metricsStart = new Date().toISOString();

const FETCH_TIMEOUT_MS = 10_000;
/** Evaluations answered, by reason (for /metrics). */
const reasons = new Map<string, number>();
const counted = (reason: string) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
const RELAY_IDLE_MS = 5_000;
/** Set at start: the flag source's namespace (see `redisNamespace`). */
let redisPrefix = "config-service:flags";
const REDIS_KEY = (env: string) => `${redisPrefix}:${env}`;

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function freshness(st: EnvState): Freshness {
  const now = Date.now();
  if (source.kind === "file") return "live";
  if (st.confirmedAt !== null) {
    if (!s.UNLEASH_AUTO_SYNC_ENABLED || now - st.confirmedAt <= staleMs) return "live";
    return "stale";
  }
  return now - Date.parse(st.syncedAt) <= staleMs ? "cached" : "stale";
}

function view(env: string): EnvView | undefined {
  const st = envs.get(env);
  return st ? { set: st.set, freshness: freshness(st) } : undefined;
}

// ---------------------------------------------------------------------------------------
// Sync

/** Fetches `env` from the source (coalescing concurrent syncs) and applies what changed. */
function syncEnv(env: string, force: boolean, ctx: Ctx): Promise<EnvState> {
  const running = syncing.get(env);
  if (running) return running;
  const p = doSync(env, force, ctx).finally(() => syncing.delete(env));
  syncing.set(env, p);
  return p;
}

async function doSync(env: string, force: boolean, ctx: Ctx): Promise<EnvState> {
  const st = envs.get(env);
  const full = force || !st || Date.now() - st.lastFull >= s.UNLEASH_SYNC_INTERVAL * 1000;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]);
  const r = await source.fetch(env, full ? null : st?.etag ?? null, signal);
  const now = new Date().toISOString();
  if (r.status === 304 && st) {
    st.confirmedAt = Date.now();
    st.etag = r.etag;
    if (!st.persisted) await persist(env, st);
    return st;
  }
  if (r.status === 304) throw new Error(`${source.kind} answered 304 to a first fetch of ${env}`);
  const set = FlagSet.from(r.doc, `${source.kind} ${env}`);
  const doc = JSON.stringify(set.toDocument());
  const hash = await sha256(doc);
  if (st && st.hash === hash) {
    Object.assign(st, {
      confirmedAt: Date.now(),
      etag: r.etag,
      lastFull: full ? Date.now() : st.lastFull,
    });
    if (!st.persisted) await persist(env, st);
    else if (full) await store.touch(env, r.etag, now).catch(() => {});
    return st;
  }
  const next: EnvState = {
    set,
    hash,
    etag: r.etag,
    confirmedAt: Date.now(),
    syncedAt: now,
    persisted: false,
    lastFull: full ? Date.now() : (st?.lastFull ?? Date.now()),
  };
  envs.set(env, next);
  log.info("flag definitions changed", {
    environment: env,
    flags: set.features.size,
    source: source.kind,
  });
  await persist(env, next);
  return next;
}

/** Stores the definitions with their change events, then caches them in Redis. */
async function persist(env: string, st: EnvState): Promise<void> {
  const doc = JSON.stringify(st.set.toDocument());
  const snap: Snapshot = {
    environment: env,
    hash: st.hash,
    etag: st.etag,
    doc,
    synced_at: st.syncedAt,
  };
  let events: FlagEvent[] = [];
  try {
    events = await store.save(
      snap,
      (prev) => diffDocuments(prev, doc, env, new Date().toISOString()),
    );
    st.persisted = true;
  } catch (err) {
    log.warn("flag definitions not stored; retrying at the next poll", {
      environment: env,
      error: (err as Error).message,
    });
  }
  if (events.length > 0) {
    for (const e of events) log.info("flag changed", { ...e });
    kickRelay();
  }
  if (redis && s.FEATURE_FLAG_CACHE_TTL > 0) {
    const value = JSON.stringify({ hash: st.hash, etag: st.etag, synced_at: st.syncedAt, doc });
    // Replicas sync on their own clocks: one that fetched before a change may finish after
    // one that fetched after it, so the newest fetch wins, not the last write.
    await setIfNewer(redis, REDIS_KEY(env), value, st.syncedAt, s.FEATURE_FLAG_CACHE_TTL)
      .catch(() => {});
  }
}

/** Restores the last-known-good definitions: the store, or Redis when it holds newer ones. */
async function restore(): Promise<void> {
  const fromStore = await store.load();
  for (const snap of fromStore) adopt(snap, true);
  if (!redis || s.FEATURE_FLAG_CACHE_TTL === 0) return;
  try {
    if (redis.status === "wait") await redis.connect();
    for (const env of environments) {
      const raw = await redis.get(REDIS_KEY(env));
      if (!raw) continue;
      const c = JSON.parse(raw) as Omit<Snapshot, "environment">;
      const have = envs.get(env);
      if (have && Date.parse(have.syncedAt) >= Date.parse(c.synced_at)) continue;
      adopt({ ...c, environment: env }, false);
    }
  } catch (err) {
    log.warn("flag cache in Redis not read", { error: (err as Error).message });
  }
}

function adopt(snap: Snapshot, persisted: boolean): void {
  if (!environments.includes(snap.environment)) return;
  try {
    envs.set(snap.environment, {
      set: FlagSet.from(JSON.parse(snap.doc), `stored ${snap.environment}`),
      hash: snap.hash,
      etag: snap.etag,
      confirmedAt: null,
      syncedAt: snap.synced_at,
      persisted,
      lastFull: 0,
    });
  } catch (err) {
    log.warn("stored flag definitions unreadable", {
      environment: snap.environment,
      error: (err as Error).message,
    });
  }
}

/** The last sync error per environment: a failure is logged when it starts or changes. */
const syncErrors = new Map<string, string>();

async function pollAll(ctx: Ctx): Promise<void> {
  await Promise.all(environments.map(async (env) => {
    try {
      await syncEnv(env, false, ctx);
      if (syncErrors.delete(env)) log.info("flag sync recovered", { environment: env });
    } catch (err) {
      if (ctx.signal.aborted) return;
      if (syncErrors.get(env) === (err as Error).message) return;
      syncErrors.set(env, (err as Error).message);
      log.warn("flag sync failed; evaluating from the last definitions", {
        environment: env,
        source: source.kind,
        error: (err as Error).message,
      });
    }
  }));
}

// ---------------------------------------------------------------------------------------
// Events

let relayAgain = false;

/** Drains the outbox now (a change was just stored). */
function kickRelay(): void {
  drainOnce().catch((err) =>
    log.warn("flag event relay failed", { error: (err as Error).message })
  );
}

async function drainOnce(): Promise<void> {
  if (relayRunning) {
    relayAgain = true;
    return;
  }
  relayRunning = true;
  try {
    do {
      relayAgain = false;
      while (await store.drain(200, send) > 0) { /* until empty */ }
    } while (relayAgain);
  } finally {
    relayRunning = false;
  }
}

/** The relay loop: drains every few seconds, backing off while Kafka or the store is away. */
async function relay(ctx: Ctx): Promise<void> {
  let next = RELAY_IDLE_MS;
  try {
    await drainOnce();
    relayDelay = 0;
  } catch (err) {
    relayDelay = Math.min(Math.max(relayDelay * 2, 500), 30_000);
    next = relayDelay;
    log.warn("flag event relay failed; retrying", {
      error: (err as Error).message,
      retry_in_ms: next,
    });
  } finally {
    if (!ctx.signal.aborted) ctx.after(next, { type: "relay" });
  }
}

async function send(rows: { id: number; event: FlagEvent }[]): Promise<void> {
  if (!producer) return; // No Kafka: the log line written at sync is the record.
  await producer.send({
    topic: s.FEATURE_FLAG_KAFKA_TOPIC,
    acks: -1,
    messages: rows.map((r) => ({
      key: `${r.event.environment}:${r.event.flag}`,
      value: JSON.stringify(r.event),
    })),
  });
}

// ---------------------------------------------------------------------------------------
// Evaluation

function count(env: string, flag: string, e: Evaluation): void {
  if (source.kind !== "unleash" || s.UNLEASH_DISABLE_METRICS) return;
  let toggles = metrics.get(env);
  if (!toggles) metrics.set(env, toggles = {});
  const t = toggles[flag] ??= { yes: 0, no: 0, variants: {} };
  if (e.enabled) t.yes++;
  else t.no++;
  if (e.variant.enabled) t.variants[e.variant.name] = (t.variants[e.variant.name] ?? 0) + 1;
}

async function report(ctx: Ctx): Promise<void> {
  const stop = new Date().toISOString();
  const buckets = metrics;
  const start = metricsStart;
  metrics = new Map();
  metricsStart = stop;
  for (const [env, toggles] of buckets) {
    try {
      await source.sendMetrics!(
        env,
        { start, stop, toggles },
        AbortSignal.timeout(FETCH_TIMEOUT_MS),
      );
    } catch (err) {
      log.warn("Unleash metrics not sent", { environment: env, error: (err as Error).message });
    }
  }
  if (!ctx.signal.aborted) ctx.after(s.UNLEASH_METRICS_INTERVAL * 1000, { type: "report" });
}

function envOf(requested: string | undefined, errors: FieldError[], field = "environment"): string {
  if (requested === undefined) return defaultEnv;
  if (!environments.includes(requested)) {
    errors.push({
      field,
      in: "body",
      message: `must be one of ${environments.join(", ")}`,
    });
  }
  return requested;
}

function ofContext(
  userId: string | undefined,
  context: Record<string, unknown> | undefined,
  env: string,
) {
  const ctx: EvaluationContext = { ...(context as EvaluationContext ?? {}), environment: env };
  if (userId !== undefined) {
    ctx.targetingKey = userId;
    ctx.userId = userId;
  }
  return ctx;
}

function evaluate(op: "evaluate" | "boolean" | "bulk", text: string): string {
  const raw = parseJsonBody(text);
  const errors: FieldError[] = [];
  if (op === "bulk") {
    const b = BulkBody.safeParse(raw);
    if (!b.success) throw new ValidationError(bodyErrors(b.error));
    const env = envOf(b.data.environment, errors);
    const items = b.data.flags.map((f, i) => {
      const td = typeAndDefault(f.type, f.default_value, `flags.${i}.default_value`);
      if ("field" in td) errors.push(td);
      return { name: f.flag_name, td };
    });
    if (errors.length > 0) throw new ValidationError(errors);
    const ctx = ofContext(b.data.user_id, b.data.context, env);
    const out: Record<string, Omit<Resolution, "variant">> = {};
    for (const { name, td } of items) {
      if ("field" in td) continue;
      const r = evaluateDirect(provider, name, td.type, td.def, ctx);
      counted(r.reason);
      out[name] = r.error_code === undefined
        ? { value: r.value, reason: r.reason }
        : { value: r.value, reason: r.reason, error_code: r.error_code };
    }
    return JSON.stringify(out);
  }
  const b = (op === "boolean" ? BooleanBody : EvaluateBody).safeParse(raw);
  if (!b.success) throw new ValidationError(bodyErrors(b.error));
  const body = b.data as
    & { flag_name: string; type?: undefined; default_value?: unknown }
    & typeof b.data;
  const env = envOf(body.environment, errors);
  const td = typeAndDefault(
    op === "boolean" ? "boolean" : body.type,
    body.default_value,
    "default_value",
  );
  if ("field" in td) errors.push(td);
  if (errors.length > 0 || "field" in td) throw new ValidationError(errors);
  const r = evaluateDirect(
    provider,
    body.flag_name,
    td.type,
    td.def,
    ofContext(body.user_id, body.context, env),
  );
  const out: Record<string, unknown> = {
    flag_name: body.flag_name,
    value: r.value,
    reason: r.reason,
  };
  if (op === "evaluate" && r.variant !== undefined) out.variant = r.variant;
  out.environment = env;
  if (r.error_code !== undefined) out.error_code = r.error_code;
  counted(r.reason);
  return JSON.stringify(out);
}

/** An OFREP answer (success or `{key, errorCode, errorDetails}`). */
function ofrepOne(
  key: string,
  ctx: EvaluationContext,
): { status: number; body: Record<string, unknown> } {
  try {
    const r = provider.untyped(key, ctx);
    counted(r.reason);
    return {
      status: 200,
      body: { key, value: r.value, reason: r.reason, variant: r.variant, metadata: {} },
    };
  } catch (err) {
    if (err instanceof OpenFeatureError) {
      counted("ERROR");
      const notFound = err.code === ErrorCode.FLAG_NOT_FOUND;
      return {
        status: notFound ? 404 : 400,
        body: {
          key,
          // OFREP has no TYPE_MISMATCH or PROVIDER_NOT_READY: the rest is GENERAL.
          errorCode: notFound ? "FLAG_NOT_FOUND" : "GENERAL",
          errorDetails: err.message,
        },
      };
    }
    throw err;
  }
}

async function ofrep(m: FlagCalls["ofrep"]["req"]): Promise<HttpAnswer> {
  const bad = (details: string, code = "INVALID_CONTEXT"): HttpAnswer => ({
    status: 400,
    body: JSON.stringify(
      m.key === null
        ? { errorCode: code, errorDetails: details }
        : { key: m.key, errorCode: code, errorDetails: details },
    ),
  });
  let raw: unknown = {};
  if (m.body.trim() !== "") {
    try {
      raw = JSON.parse(m.body);
    } catch {
      return bad("the body is not valid JSON", "PARSE_ERROR");
    }
  }
  // MAX_JSON_DEPTH holds per field (a context of 128 levels passes), in OFREP's error shape.
  const deep = deepFields(raw);
  if (deep.length > 0) return bad(deep.map((e) => `${e.field} ${e.message}`).join("; "));
  const b = OfrepBody.safeParse(raw);
  if (!b.success) return bad(bodyErrors(b.error).map((e) => `${e.field} ${e.message}`).join("; "));
  const env = m.env ?? defaultEnv;
  if (!environments.includes(env)) return bad(`unknown environment ${env}`);
  const ctx: EvaluationContext = {
    ...(b.data.context as EvaluationContext ?? {}),
    environment: env,
  };
  if (m.key !== null) {
    const r = ofrepOne(m.key, ctx);
    return { status: r.status, body: JSON.stringify(r.body) };
  }
  const v = view(env);
  const flags = v ? [...v.set.features.keys()].map((k) => ofrepOne(k, ctx).body) : [];
  const body = JSON.stringify({ flags });
  const etag = `"${(await sha256(body)).slice(0, 32)}"`;
  if (m.inm !== null && m.inm.split(",").some((t) => t.trim().replace(/^W\//, "") === etag)) {
    return { status: 304, body: "", etag };
  }
  return { status: 200, body, etag };
}

function definitions(env: string): FlagSet {
  const v = view(env);
  if (!v) {
    throw new BackendUnavailableError(
      "flags",
      `No flag definitions for ${env} yet: the ${source.kind} source has not answered`,
    );
  }
  return v.set;
}

function summary(f: FeatureInterface): Record<string, unknown> {
  const out: Record<string, unknown> = { name: f.name, enabled: f.enabled };
  if (f.type !== undefined) out.type = f.type;
  if (f.description !== undefined && f.description !== null) out.description = f.description;
  if (f.stale !== undefined) out.stale = f.stale;
  return out;
}

function details(f: FeatureInterface, set: FlagSet): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: f.name,
    enabled: f.enabled,
    variants: (f.variants ?? []).map((v) => {
      const x: Record<string, unknown> = { name: v.name, weight: v.weight };
      if (v.stickiness) x.stickiness = v.stickiness;
      if (v.payload) x.payload = v.payload;
      return x;
    }),
    strategies: (f.strategies ?? []).map((st) => {
      const x: Record<string, unknown> = { name: st.name, parameters: st.parameters ?? {} };
      if (st.constraints?.length) x.constraints = st.constraints;
      if (st.segments?.length) {
        x.segments = st.segments.map((id) => set.segments.get(id) ?? { id });
      }
      const sv = (st as { variants?: unknown[] }).variants;
      if (sv?.length) x.variants = sv;
      return x;
    }),
  };
  for (
    const k of [
      "type",
      "description",
      "project",
      "stale",
      "impressionData",
      "dependencies",
    ] as const
  ) {
    if (f[k] !== undefined && f[k] !== null) out[k] = f[k];
  }
  return out;
}

// ---------------------------------------------------------------------------------------

serveActor<FlagCalls>({
  async init(ctx) {
    s = ctx.settings;
    environments = flagEnvironments(s);
    defaultEnv = defaultFlagEnvironment(s);
    source = s.UNLEASH_URL
      ? new UnleashFlagSource({
        url: s.UNLEASH_URL,
        adminToken: s.UNLEASH_API_TOKEN,
        clientTokens: s.UNLEASH_CLIENT_TOKENS,
        appName: s.UNLEASH_APP_NAME,
        instanceId: s.UNLEASH_INSTANCE_ID,
      }, s.UNLEASH_REFRESH_INTERVAL)
      : new FileFlagSource(flagsFilePath(s));
    staleMs = Math.max(s.FEATURE_FLAG_CACHE_TTL * 1000, 3 * source.pollSeconds * 1000);
    if (s.DATABASE_URL) {
      const { createPostgres } = await import("../lib/backends/postgres.ts");
      const { PostgresFlagStore } = await import("../lib/flags/store.ts");
      store = new PostgresFlagStore(createPostgres(s.DATABASE_URL, { max: 2 }));
    } else {
      const { openSqlite } = await import("../lib/backends/sqlite.ts");
      const { SqliteFlagStore } = await import("../lib/flags/store.ts");
      store = new SqliteFlagStore(openSqlite(s.DATA_DIR));
    }
    await store.migrate();
    if (s.REDIS_HOST) {
      const { createRedis, redisNamespace, setIfNewer: sin } = await import(
        "../lib/backends/redis.ts"
      );
      setIfNewer = sin;
      redisPrefix = `config-service:flags:${redisNamespace(s.UNLEASH_URL ?? flagsFilePath(s))}`;
      redis = createRedis(s, "config-service-flags");
    }
    if (s.KAFKA_BOOTSTRAP_SERVERS) {
      const { createKafka, createProducer } = await import("../lib/backends/kafka.ts");
      producer = createProducer(createKafka(s.KAFKA_BOOTSTRAP_SERVERS, "config-service-flags"));
      producer.connect().catch(() => {}); // the relay retries
    }
    provider = new LocalUnleashProvider(view, {
      fallback: s.FEATURE_FLAG_FALLBACK_ENABLED,
      defaultEnvironment: defaultEnv,
    });
    provider.onEvaluated = count;
    monitor = new BackendMonitor([{
      ...source.probe,
      describe: () => ({
        environments: Object.fromEntries(
          environments.map((e) => [e, envs.has(e) ? freshness(envs.get(e)!) : "none"]),
        ),
      }),
    }]);
    await restore();
    const unleash = source.kind === "unleash";
    if (!unleash || s.UNLEASH_AUTO_SYNC_ON_STARTUP) await pollAll(ctx);
    if (!unleash || s.UNLEASH_AUTO_SYNC_ENABLED) {
      ctx.after(unleash && s.UNLEASH_AUTO_SYNC_ON_STARTUP ? source.pollSeconds * 1000 : 0, {
        type: "poll",
      });
    }
    if (unleash && !s.UNLEASH_DISABLE_METRICS) {
      ctx.after(s.UNLEASH_METRICS_INTERVAL * 1000, { type: "report" });
    }
    ctx.after(0, { type: "relay" });
    monitor.start(ctx);
  },
  handle(msg, ctx) {
    switch (msg.type) {
      case "metrics":
        return [
          {
            name: "flag_evaluations_total",
            help: "Feature-flag evaluations by OpenFeature reason",
            type: "counter" as const,
            samples: [...reasons].map(([reason, value]) => ({ labels: { reason }, value })),
          },
          {
            name: "flag_definitions",
            help: "Flags known per environment",
            type: "gauge" as const,
            samples: [...envs].map(([environment, st]) => ({
              labels: { environment, freshness: freshness(st) },
              value: st.set.features.size,
            })),
          },
        ];
      case "ping":
        return { actor: "flags", ok: true };
      case "status":
        return monitor.check(ctx);
      case "probe":
        return monitor.tick(ctx);
      case "evaluate":
        return evaluate(msg.op, msg.body);
      case "ofrep":
        return ofrep(msg);
      case "list":
        return JSON.stringify([...definitions(msg.env).features.values()].map(summary));
      case "get": {
        const set = definitions(msg.env);
        const f = set.features.get(msg.name);
        if (!f) throw new NotFoundError(`Feature flag ${msg.name} not found in ${msg.env}`);
        return JSON.stringify(details(f, set));
      }
      case "sync":
        return syncEnv(msg.env, true, ctx).then(
          (st) =>
            JSON.stringify({
              environment: msg.env,
              flags_synced: st.set.features.size,
              timestamp: new Date(st.confirmedAt ?? Date.now()).toISOString(),
            }),
          (err) => {
            throw new BackendUnavailableError(
              "flags",
              `Flag sync of ${msg.env} from ${source.kind} failed: ${(err as Error).message}`,
            );
          },
        );
      case "poll":
        return pollAll(ctx).finally(() => {
          if (!ctx.signal.aborted) ctx.after(source.pollSeconds * 1000, { type: "poll" });
        });
      case "relay":
        return relay(ctx);
      case "report":
        return report(ctx);
      default: {
        const never: never = msg;
        throw new Error(`FlagActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    // A sync may be storing what it fetched (the store, then Redis): let it finish before
    // the connections close (its fetch, if still running, was aborted with the signal).
    await settleWithin(Promise.allSettled([...syncing.values()]), STOP_DRAIN_MS);
    await producer?.disconnect().catch(() => {});
    redis?.disconnect();
    await store?.close().catch(() => {});
  },
});
