/// <reference lib="deno.worker" />
/**
 * ConfigActor: owns the configuration store (SQLite or PostgreSQL), the in-memory
 * write-through cache, the Redis L2 cache and invalidation channel, the change-log tail
 * that feeds watchers, and the outbox relay to Kafka. The only place those drivers are used
 * for configuration.
 */
import { serveActor } from "./actor_host.ts";
import type { ActorContext } from "./actor_host.ts";
import { BackendMonitor } from "./monitor.ts";
import type { ConfigCalls, GetReply, ListReply, WriteReply } from "./config_protocol.ts";
import type { BackendStatus } from "./protocol.ts";
import { type BackendProbe, disabledStatus } from "../lib/backend.ts";
import { openSqlite, sqliteProbe } from "../lib/backends/sqlite.ts";
import type { Sql } from "../lib/backends/postgres.ts";
import type { Producer } from "../lib/backends/kafka.ts";
import {
  BackendUnavailableError,
  DomainError,
  NotFoundError,
  ValidationError,
} from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { EntryCache, type Slot, slotOf } from "../lib/config/cache.ts";
import {
  changeView,
  type EntryId,
  entryView,
  etagOf,
  eventView,
  historyView,
  idKey,
  type StoredChange,
  type StoredEntry,
  type WriteOp,
} from "../lib/config/model.ts";
import type { ConfigStore, ListFilter } from "../lib/config/store.ts";
import { SqliteConfigStore } from "../lib/config/sqlite_store.ts";
import { loadSecretBox, type SecretBox } from "../lib/config/secrets.ts";
import type { Redis } from "ioredis";

type Ctx = ActorContext<ConfigCalls>;

/** How often the change log is polled for other replicas' writes, ms. */
const TAIL_MS = 250;
/** How often the outbox is checked when nothing nudges the relay, ms. */
const RELAY_MS = 1_000;
const PRUNE_MS = 60_000;
const REDIS_TTL_S = 300;
const INVALIDATE_CHANNEL = "config-service:config-changes";
/** Session advisory lock held by the one replica that relays the outbox. */
const RELAY_LOCK = 727_274_002;

// Compare-and-set by version: the shared cache only ever moves forward.
const SET_IF_NEWER = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, '^(%d+)|'))
  if v and v >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1`;

/**
 * The L2 watermark: every change with a sequence up to it is in Redis (or a newer version
 * of its entry is). It only moves over a range some replica pushed in full, so changes made
 * while Redis was unreachable are replayed from the change log before L2 is trusted again —
 * by whichever replica next connects, also one started after all the others died.
 */
/** Set at start: `cs:<namespace of the store>` (see `redisNamespace`). */
let redisPrefix = "cs";
const l2SeqKey = () => `${redisPrefix}:cfg:l2seq`;
const ADVANCE_L2_SEQ = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= tonumber(ARGV[1]) and cur < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`;
/** L2 is not read while true: at start and after losing Redis, until a repair ran. */
let l2Dirty = true;
let l2Repairing = false;
/** Watermark advances of the tail, in order. */
let l2Chain: Promise<unknown> = Promise.resolve();

let monitor: BackendMonitor;
let store: ConfigStore;
/** False until migrations ran: a store that is down at start is retried, not fatal. */
let storeReady = false;
/** The last store call (or probe) failed: cached answers are marked stale. */
let storeFailing = false;
/** Bound on one store call: below the actor call timeout, so callers get 503, not 504. */
let storeTimeoutMs = 4_000;
let migrateDelay = 500;
let sql: Sql | null = null;
let cache: EntryCache;
let secrets: SecretBox | null = null;
let redis: Redis | null = null;
let subscriber: Redis | null = null;
let producer: Producer | null = null;
let producerConnected = false;
let relayLeader: { release(): void; check(): Promise<boolean> } | null = null;
/** Highest change sequence emitted to watchers. */
let lastSeq = 0;
/** Highest change sequence this actor committed (may be ahead of `lastSeq`). */
let committedSeq = 0;
let tailing = false;
let tailAgain = false;
let relaying = false;
let relayDelay = 200;
let topic = "config-updates";
let instance = "";

let actorCtx: Ctx | null = null;

/** Tracks the store's last outcome and tells the main thread when it flips. */
function setStoreFailing(failing: boolean): void {
  if (failing === storeFailing) return;
  storeFailing = failing;
  actorCtx?.emit({ type: "config_store", failing });
}

function storageDown(): boolean {
  return storeFailing || !storeReady;
}

/**
 * Runs a store call, bounded by {@link storeTimeoutMs} so a caller gets a 503 before its
 * actor call times out (504); driver failures become 503, domain errors pass through.
 * Outcomes feed `storeFailing`, which marks cached answers stale.
 */
async function stored<T>(fn: () => Promise<T>): Promise<T> {
  if (!storeReady) {
    throw new BackendUnavailableError(
      "storage",
      "Configuration store unavailable: not reachable since start (retrying)",
    );
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const out = await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${storeTimeoutMs} ms`)),
          storeTimeoutMs,
        );
      }),
    ]);
    setStoreFailing(false);
    return out;
  } catch (err) {
    if (err instanceof DomainError) throw err;
    setStoreFailing(true);
    const msg = err instanceof Error ? err.message : String(err);
    log.warn("config store call failed", { error: msg });
    throw new BackendUnavailableError("storage", `Configuration store unavailable: ${msg}`);
  } finally {
    clearTimeout(timer);
  }
}

const redisKey = (id: EntryId) =>
  `${redisPrefix}:cfg:${JSON.stringify([id.environment, id.service, id.key])}`;

/** Forward-only put; resolves whether it reached Redis. */
function l2Put(id: EntryId, version: number, entry: StoredEntry | null): Promise<boolean> {
  if (!redis || redis.status !== "ready") return Promise.resolve(false);
  return redis.eval(SET_IF_NEWER, 1, redisKey(id), version, JSON.stringify(entry), REDIS_TTL_S)
    .then(() => true, () => false);
}

/** Replays the changes past the watermark into L2, then trusts L2 again. */
async function repairL2(): Promise<void> {
  if (!redis || l2Repairing || !storeReady || redis.status !== "ready") return;
  l2Repairing = true;
  try {
    let from = Number(await redis.get(l2SeqKey()) ?? 0);
    let replayed = 0;
    while (true) {
      const changes: StoredChange[] = await store.changesSince(from, {}, 1000);
      if (changes.length === 0) break;
      const oks = await Promise.all(changes.map((c) => l2Put(c, c.version, changeEntry(c))));
      if (!oks.every(Boolean)) return;
      const to = changes[changes.length - 1].seq;
      await redis.eval(ADVANCE_L2_SEQ, 1, l2SeqKey(), from, to);
      replayed += changes.length;
      from = to;
      if (changes.length < 1000) break;
    }
    if (l2Dirty && replayed > 0) log.info("L2 cache repaired from the change log", { replayed });
    l2Dirty = false;
  } catch (err) {
    log.warn("L2 cache repair failed; retrying", { error: (err as Error).message });
  } finally {
    l2Repairing = false;
  }
}

async function l2Get(id: EntryId): Promise<StoredEntry | null | undefined> {
  if (!redis || redis.status !== "ready" || l2Dirty) return undefined;
  try {
    const v = await redis.get(redisKey(id));
    if (v === null) return undefined;
    return JSON.parse(v.slice(v.indexOf("|") + 1));
  } catch {
    return undefined;
  }
}

/** Reads one id through L2 and the store, filling the caches. */
async function load(id: EntryId): Promise<Slot> {
  const epoch = cache.epoch;
  let entry = await l2Get(id);
  if (entry === undefined) {
    entry = await stored(() => store.get(id));
    l2Put(id, entry?.version ?? 0, entry);
  }
  const slot = slotOf(entry);
  // An invalidation during the read may mean what was read is already old.
  if (cache.epoch === epoch) cache.set(idKey(id), slot);
  return slot;
}

function reply(slot: Slot): GetReply {
  return { body: slot.body!, etag: slot.etag, stale: storageDown() };
}

function notFound(id: EntryId): never {
  throw new NotFoundError(
    `No configuration ${id.key} in ${id.environment}${
      id.service ? ` for ${id.service} or its global scope` : ""
    }`,
  );
}

/** GET: service scope, then the environment's global scope. Synchronous on cache hits. */
function get(id: EntryId): GetReply | Promise<GetReply> {
  const global = { ...id, service: "" };
  const own = id.service ? cache.get(idKey(id)) : undefined;
  if (own?.body) return reply(own);
  if (!id.service || own !== undefined) {
    const g = cache.get(idKey(global));
    if (g?.body) return reply(g);
    if (g !== undefined) notFound(id);
  }
  return (async () => {
    if (id.service && own === undefined) {
      const s = await load(id);
      if (s.body) return reply(s);
    }
    const g = await load(global);
    if (g.body) return reply(g);
    notFound(id);
  })();
}

/**
 * GET with the secret value decrypted (`?reveal=true`, for a token with `secrets:read`):
 * read from the store, never cached in clear.
 */
async function reveal(id: EntryId): Promise<GetReply> {
  let e = id.service ? await stored(() => store.get(id)) : undefined;
  e ??= await stored(() => store.get({ ...id, service: "" }));
  if (!e) notFound(id);
  const view = entryView(e, true);
  if (e.secret && e.value !== null) {
    if (!secrets) throw new Error("secret entry but no encryption key loaded");
    view.value = JSON.parse(await secrets.decrypt(e.value));
  }
  return { body: JSON.stringify(view), etag: etagOf(e), stale: false };
}

/**
 * Bulk GET as a ready JSON object text `{"key": value, …}` (service scope first, then
 * global; missing keys left out). Cache hits are answered synchronously; the misses of
 * both scopes are read with one query each.
 */
function bulk(environment: string, service: string, keys: string[]): string | Promise<string> {
  const found = new Map<string, string>();
  const unknown: string[] = [];
  for (const key of keys) {
    const own = service ? cache.get(idKey({ environment, service, key })) : undefined;
    if (own?.body) {
      found.set(key, own.value);
      continue;
    }
    if (service && own === undefined) {
      unknown.push(key);
      continue;
    }
    const g = cache.get(idKey({ environment, service: "", key }));
    if (g === undefined) unknown.push(key);
    else if (g.body) found.set(key, g.value);
  }
  const render = () => {
    const parts: string[] = [];
    for (const key of keys) {
      const v = found.get(key);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    return `{${parts.join(",")}}`;
  };
  if (unknown.length === 0) return render();
  return (async () => {
    const epoch = cache.epoch;
    const [own, global] = await Promise.all([
      service ? stored(() => store.getMany(environment, service, unknown)) : [],
      stored(() => store.getMany(environment, "", unknown)),
    ]);
    const byKey = (rows: StoredEntry[]) => new Map(rows.map((e) => [e.key, e]));
    const ownBy = byKey(own);
    const globalBy = byKey(global);
    const fill = epoch === cache.epoch;
    for (const key of unknown) {
      const o = service ? slotOf(ownBy.get(key) ?? null) : undefined;
      const g = slotOf(globalBy.get(key) ?? null);
      if (fill) {
        if (o) cache.set(idKey({ environment, service, key }), o);
        cache.set(idKey({ environment, service: "", key }), g);
      }
      const hit = o?.body ? o : g.body ? g : undefined;
      if (hit) found.set(key, hit.value);
    }
    return render();
  })();
}

/**
 * A list as the JSON text of its entries (masked), and the change index it reflects: one
 * string crosses to the HTTP thread as a copy, where an array of objects is cloned field by
 * field and then serialized there again.
 */
async function list(filter: ListFilter): Promise<ListReply> {
  const rows = await stored(() => store.list(filter));
  return {
    body: JSON.stringify(rows.map((e) => entryView(e))),
    index: Math.max(lastSeq, committedSeq),
  };
}

async function write(op: WriteOp, ctx: Ctx): Promise<WriteReply> {
  // No fail-fast on the probe's verdict: a probe that times out under load would turn every
  // write into a 503 until the next probe. A store that is really down fails the write
  // within the pool's connect timeout.
  const res = await stored(() => store.write(op));
  if (res.change.seq > committedSeq) committedSeq = res.change.seq;
  const key = idKey(op.id);
  cache.set(key, slotOf(res.entry));
  void l2Put(op.id, res.change.version, res.entry);
  if (redis?.status === "ready") {
    redis.publish(INVALIDATE_CHANNEL, JSON.stringify({ seq: res.change.seq, from: instance }))
      .catch(() => {});
  }
  ctx.after(0, { type: "tail" });
  if (producer) ctx.after(0, { type: "relay" });
  const shown = res.entry ?? {
    ...op.id,
    value: res.change.value ?? "null",
    secret: res.change.secret,
    description: res.change.description,
    version: res.change.version,
    created_at: res.change.created_at,
    updated_at: res.change.updated_at,
    updated_by: res.change.updated_by,
  };
  const entry = entryView(shown as StoredEntry);
  if (!res.entry) entry.deleted = true;
  return { entry, etag: etagOf(shown as StoredEntry), seq: res.change.seq };
}

async function storedValue(value: string, secret: boolean): Promise<string> {
  if (!secret) return value;
  if (!secrets) {
    throw new ValidationError([{
      field: "secret",
      in: "body",
      message: "secret entries need CONFIG_ENCRYPTION_KEY (base64 of 32 bytes) on every replica",
    }]);
  }
  return await secrets.encrypt(value);
}

/** The entry a change leaves behind (null after a delete). */
function changeEntry(c: StoredChange): StoredEntry | null {
  if (c.value === null) return null;
  return {
    environment: c.environment,
    service: c.service,
    key: c.key,
    value: c.value,
    secret: c.secret,
    description: c.description,
    version: c.version,
    created_at: c.created_at,
    updated_at: c.updated_at,
    updated_by: c.updated_by,
  };
}

/** Applies committed changes (ours and other replicas') to the cache and tells watchers. */
async function tail(ctx: Ctx): Promise<void> {
  if (tailing) {
    tailAgain = true;
    return;
  }
  tailing = true;
  try {
    do {
      tailAgain = false;
      await store.sequence?.();
      const changes: StoredChange[] = await store.changesSince(lastSeq, {}, 1000);
      setStoreFailing(false);
      if (changes.length === 0) break;
      const puts: Promise<boolean>[] = [];
      const prev = lastSeq;
      for (const c of changes) {
        const key = idKey(c);
        // The writer's own L2 update may not have landed yet: push the committed state so
        // a read here cannot fetch the older one from Redis and keep it (versions only rise).
        puts.push(l2Put(c, c.version, changeEntry(c)));
        const cur = cache.peek(key);
        // Our own writes are cached already at this version; others' are dropped.
        if (!cur || cur.version < c.version) cache.invalidate(key);
      }
      lastSeq = changes[changes.length - 1].seq;
      const next = lastSeq;
      if (redis) {
        l2Chain = l2Chain.then(async () => {
          const ok = (await Promise.all(puts)).every(Boolean);
          if (!ok) l2Dirty = true;
          else if (!l2Dirty) {
            await redis!.eval(ADVANCE_L2_SEQ, 1, l2SeqKey(), prev, next).catch(() => {});
          }
        });
      }
      ctx.emit({ type: "config_changes", changes: changes.map(changeView) });
      if (changes.length === 1000) tailAgain = true;
    } while (tailAgain);
  } catch (err) {
    setStoreFailing(true);
    log.debug("config tail failed", { error: String(err) });
  } finally {
    tailing = false;
  }
}

/** Runs migrations and reads the change-log head; retries with backoff while unreachable. */
async function openStore(ctx: Ctx): Promise<void> {
  try {
    await store.migrate();
    lastSeq = await store.maxSeq();
    storeReady = true;
    void repairL2();
    ctx.after(TAIL_MS, { type: "tail_tick" });
    if (producer) ctx.after(0, { type: "relay" });
  } catch (err) {
    log.warn("configuration store unreachable; retrying", {
      error: err instanceof Error ? err.message : String(err),
      retry_in_ms: migrateDelay,
    });
    ctx.after(migrateDelay, { type: "open" });
    migrateDelay = Math.min(migrateDelay * 2, 5_000);
  }
}

/**
 * Holds (or takes) the relay lock: a session advisory lock on a reserved connection. The
 * lock is checked on every relay round, so a lost connection (which drops the lock in
 * PostgreSQL) is noticed before relaying again.
 */
async function becomeRelayLeader(): Promise<boolean> {
  if (!sql) {
    relayLeader ??= { release() {}, check: () => Promise.resolve(true) };
    return true;
  }
  if (relayLeader) {
    if (await relayLeader.check().catch(() => false)) return true;
    relayLeader.release();
    relayLeader = null;
  }
  const conn = await sql.reserve();
  let ok = false;
  try {
    ok = Boolean((await conn`SELECT pg_try_advisory_lock(${RELAY_LOCK}) AS ok`)[0].ok);
  } finally {
    if (!ok) conn.release();
  }
  if (!ok) return false;
  relayLeader = {
    check: async () =>
      Boolean(
        (await conn`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
          AND objid = ${RELAY_LOCK} AND pid = pg_backend_pid() AND granted) AS held`)[0].held,
      ),
    release: () => {
      // Unlock before the connection goes back to the pool, or a pooled session would
      // keep holding it.
      conn`SELECT pg_advisory_unlock(${RELAY_LOCK})`.catch(() => {}).finally(() => conn.release());
    },
  };
  log.info("relaying the configuration outbox to Kafka", { instance });
  return true;
}

/** Publishes unpublished changes in sequence order; marks them sent once Kafka acks. */
async function relay(ctx: Ctx): Promise<void> {
  if (!producer || relaying) return;
  relaying = true;
  let next = RELAY_MS;
  try {
    if (!(await becomeRelayLeader())) return;
    if (!producerConnected) {
      await producer.connect();
      producerConnected = true;
    }
    while (true) {
      const batch = await store.unpublished(500);
      if (batch.length === 0) break;
      await producer.send({
        topic,
        acks: -1,
        messages: batch.map((c) => ({
          key: `${c.environment}/${c.service}/${c.key}`,
          value: JSON.stringify(eventView(c)),
          headers: { event_id: c.event_id },
        })),
      });
      await store.markPublished(batch.map((c) => c.seq));
    }
    relayDelay = 200;
  } catch (err) {
    // Stopping disconnects the producer under a round in flight: the changes stay in the
    // outbox for the next start, and shutting down is not a failure.
    if (ctx.signal.aborted) {
      log.debug("config outbox relay stopped", { error: String(err) });
      return;
    }
    log.warn("config outbox relay failed; retrying", {
      error: err instanceof Error ? err.message : String(err),
      retry_in_ms: relayDelay,
    });
    // Keep the lock: the next round checks it is still held before relaying.
    next = relayDelay;
    relayDelay = Math.min(relayDelay * 2, 5_000);
  } finally {
    relaying = false;
    ctx.after(next, { type: "relay" });
  }
}

serveActor<ConfigCalls>({
  async init(ctx) {
    const s = ctx.settings;
    instance = s.SERVICE_INSTANCE_ID;
    actorCtx = ctx;
    storeTimeoutMs = Math.max(100, Math.min(4_000, s.ACTOR_CALL_TIMEOUT_MS - 500));
    topic = s.KAFKA_TOPIC_CONFIG_UPDATES;
    cache = new EntryCache(s.CONFIG_CACHE_MAX_ENTRIES);
    secrets = await loadSecretBox(s);
    const probes: BackendProbe[] = [];
    const fixed: BackendStatus[] = [];
    // Drivers load only when their backend is configured: on the embedded defaults this
    // worker never compiles postgres.js, ioredis or kafkajs (less memory, faster start).
    if (s.DATABASE_URL) {
      const { createPostgres, postgresProbe } = await import("../lib/backends/postgres.ts");
      const { PostgresConfigStore } = await import("../lib/config/postgres_store.ts");
      sql = createPostgres(s.DATABASE_URL, { max: s.DATABASE_POOL_SIZE });
      probes.push(postgresProbe(sql));
      store = new PostgresConfigStore(sql);
    } else {
      const db = openSqlite(s.DATA_DIR);
      probes.push(sqliteProbe(db));
      store = new SqliteConfigStore(db);
    }
    if (s.REDIS_HOST) {
      const { createRedis, redisNamespace, redisProbe } = await import("../lib/backends/redis.ts");
      redisPrefix = `cs:${
        redisNamespace(s.DATABASE_URL ?? `sqlite:${Deno.realPathSync(s.DATA_DIR)}`)
      }`;
      redis = createRedis(s);
      probes.push(redisProbe(redis));
      redis.on("close", () => {
        l2Dirty = true;
      });
      redis.on("ready", () => void repairL2());
      redis.connect().catch(() => {});
      subscriber = createRedis(s, "config-service-sub");
      subscriber.on("message", () => ctx.after(0, { type: "tail" }));
      // Messages missed while disconnected are covered by the periodic tail; what the
      // cache holds may be older than that, so drop it on every reconnect.
      subscriber.on("ready", () => {
        cache.clear();
        subscriber!.subscribe(INVALIDATE_CHANNEL).catch(() => {});
      });
      subscriber.connect().catch(() => {});
    } else fixed.push(disabledStatus("cache", "none"));
    if (s.KAFKA_BOOTSTRAP_SERVERS) {
      const { createKafka, createProducer, kafkaProbe } = await import("../lib/backends/kafka.ts");
      const kafka = createKafka(s.KAFKA_BOOTSTRAP_SERVERS);
      probes.push(kafkaProbe(kafka.admin()));
      producer = createProducer(kafka);
    } else fixed.push(disabledStatus("events", "none"));
    monitor = new BackendMonitor(probes, fixed);
    monitor.start(ctx);
    ctx.after(PRUNE_MS, { type: "prune" });
    await openStore(ctx);
  },
  deferConcurrency(settings) {
    // Deferred reads of PostgreSQL await the pool: as many at once as it has connections.
    return settings.DATABASE_URL ? settings.DATABASE_POOL_SIZE : 1;
  },
  handle(msg, ctx, call) {
    switch (msg.type) {
      case "metrics":
        return (async () => [
          {
            name: "config_cache_lookups_total",
            help: "ConfigActor cache lookups by result",
            type: "counter" as const,
            samples: [
              { labels: { result: "hit" }, value: cache?.hits ?? 0 },
              { labels: { result: "miss" }, value: cache?.misses ?? 0 },
            ],
          },
          {
            name: "config_outbox_backlog",
            help: "Configuration change events not yet published to Kafka",
            type: "gauge" as const,
            samples: storeReady
              ? [{ value: await stored(() => store.backlog()).catch(() => NaN) }]
              : [],
          },
        ])();
      case "ping":
        return { actor: "config", ok: true };
      case "status":
        return monitor.check(ctx);
      case "probe":
        if (l2Dirty) void repairL2();
        return monitor.tick(ctx);
      case "get":
        return get(msg.id);
      case "reveal":
        return reveal(msg.id);
      // Reads whose cost grows with their answer run deferred (skipped when their client hangs
      // up first), and identical ones queued together are computed once.
      case "bulk":
        return ctx.defer(() => bulk(msg.environment, msg.service, msg.keys), {
          signal: call.signal,
          key: JSON.stringify(["bulk", msg.environment, msg.service, msg.keys]),
        });
      case "list":
        return ctx.defer(() => list(msg), {
          signal: call.signal,
          key: JSON.stringify([
            "list",
            msg.environment ?? null,
            msg.service ?? null,
            msg.keys ?? null,
            msg.limit,
            msg.offset,
          ]),
        });
      case "create":
        return (async () =>
          write({
            kind: "create",
            id: msg.id,
            value: await storedValue(msg.value, msg.secret),
            secret: msg.secret,
            description: msg.description,
            by: msg.by,
          }, ctx))();
      case "update":
        return (async () => {
          // Unsaid `secret` keeps the entry's: a PUT of a new password stays a secret.
          const known = cache.peek(idKey(msg.id));
          const secret = msg.secret ??
            (known?.body ? known.secret : (await stored(() => store.get(msg.id)))?.secret) ?? false;
          return write({
            kind: "update",
            id: msg.id,
            value: await storedValue(msg.value, secret),
            secret,
            description: msg.description,
            by: msg.by,
            ifVersion: msg.ifVersion,
          }, ctx);
        })();
      case "delete":
        return write({ kind: "delete", id: msg.id, by: msg.by, ifVersion: msg.ifVersion }, ctx);
      case "rollback":
        return write({
          kind: "rollback",
          id: msg.id,
          toVersion: msg.toVersion,
          by: msg.by,
          ifVersion: msg.ifVersion,
        }, ctx);
      case "history":
        return ctx.defer(
          async () =>
            (await stored(() => store.history(msg.id, msg.limit, msg.offset))).map(historyView),
          {
            signal: call.signal,
            key: JSON.stringify([
              "history",
              msg.id.environment,
              msg.id.service,
              msg.id.key,
              msg.limit,
              msg.offset,
            ]),
          },
        );
      case "changes":
        return (async () =>
          (await stored(() =>
            store.changesSince(msg.after, {
              environment: msg.environment,
              service: msg.service,
            }, msg.limit)
          )).map(changeView))();
      case "index":
        return Math.max(lastSeq, committedSeq);
      case "outbox":
        return (async () => ({
          backlog: await stored(() => store.backlog()),
          relaying: relayLeader !== null,
        }))();
      case "tail":
        return storeReady ? tail(ctx) : undefined;
      case "tail_tick":
        return tail(ctx).finally(() => ctx.after(TAIL_MS, { type: "tail_tick" }));
      case "relay":
        return storeReady ? relay(ctx) : undefined;
      case "open":
        return openStore(ctx);
      case "prune":
        return (async () => {
          try {
            const before = new Date(Date.now() - ctx.settings.CONFIG_CHANGELOG_RETENTION * 1000);
            await store.prune(before.toISOString(), producer === null);
          } catch (err) {
            log.debug("config change-log prune failed", { error: String(err) });
          } finally {
            ctx.after(PRUNE_MS, { type: "prune" });
          }
        })();
      default: {
        const never: never = msg;
        throw new Error(`ConfigActor: unknown message ${JSON.stringify(never)}`);
      }
    }
  },
  async stop() {
    relayLeader?.release();
    await Promise.allSettled([
      store?.close(),
      redis?.quit().catch(() => redis?.disconnect()),
      subscriber?.quit().catch(() => subscriber?.disconnect()),
      producerConnected ? producer?.disconnect() : undefined,
    ]);
  },
});
