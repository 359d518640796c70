/**
 * The RegistryActor, mostly without a Worker: its mailbox (changes to one instance run one at a
 * time, in arrival order, whatever the I/O interleaving) and its heartbeat state across a
 * restart; one test checks that the worker routes messages through that mailbox.
 */
import assert from "node:assert/strict";
import { BackendMonitor } from "../actors/monitor.ts";
import type { MessageOf } from "../actors/protocol.ts";
import { entityOf, RegistryActor } from "../actors/registry_actor.ts";
import type { RegistryCalls } from "../actors/registry_protocol.ts";
import { RegistryClient } from "../actors/registry_client.ts";
import { openSqlite } from "../lib/backends/sqlite.ts";
import { createPostgres } from "../lib/backends/postgres.ts";
import { BackendUnavailableError } from "../lib/errors.ts";
import { EmbeddedRegistry } from "../lib/registry/backend.ts";
import type { Instance } from "../lib/registry/model.ts";
import {
  PostgresRegistryStore,
  type RegistryStore,
  SqliteRegistryStore,
} from "../lib/registry/store.ts";
import type { Settings } from "../lib/settings.ts";
import { embeddedSettings, serverTest, sleep, startService, tempDir, waitFor } from "./_helpers.ts";
import { tempDatabase } from "./_pg.ts";
import { actorTestContext } from "./_actor.ts";

type Msg = MessageOf<RegistryCalls>;

/** A registry store in a new temporary directory; no fsync: these tests never cut the power. */
function scratchStore(): RegistryStore {
  const db = openSqlite(tempDir());
  db.exec("PRAGMA synchronous = OFF");
  return new SqliteRegistryStore(db);
}

/** A seeded PRNG (mulberry32), so a failing round can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Yields a random few microtasks or a macrotask: reorders whatever awaits concurrently. */
async function jitter(random: () => number): Promise<void> {
  const r = random();
  if (r < 0.2) return;
  if (r < 0.35) return await sleep(0);
  for (let n = Math.floor(r * 6); n > 0; n--) await Promise.resolve();
}

/** `inner` with a random delay before and after every operation. */
function jitteryStore(inner: RegistryStore, random: () => number): RegistryStore {
  const wrap = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A) => {
    await jitter(random);
    const r = await f(...a);
    await jitter(random);
    return r;
  };
  return {
    migrate: () => inner.migrate(),
    list: () => inner.list(),
    close: () => inner.close(),
    upsert: wrap((i) => inner.upsert(i)),
    remove: wrap((s, id) => inner.remove(s, id)),
    setHealth: wrap((s, id, h) => inner.setHealth(s, id, h)),
    heartbeat: wrap((s, id, at) => inner.heartbeat(s, id, at)),
    get: wrap((s, id) => inner.get(s, id)),
  };
}

/**
 * The embedded live view, slowed down at random; `put` refuses an instance whose metadata
 * says `fail`, and waits for `gate` when one is set.
 */
class FlakyBackend extends EmbeddedRegistry {
  gate: Promise<void> | null = null;
  readonly #random: () => number;
  constructor(random: () => number = Math.random) {
    super();
    this.#random = random;
  }
  override async put(i: Instance): Promise<void> {
    await jitter(this.#random);
    if (this.gate) await this.gate;
    if (i.metadata.fail) throw new BackendUnavailableError("registry", "the live view refused");
    return super.put(i);
  }
}

/** A RegistryActor over `store`, and `send`, which delivers a message as the actor host does. */
async function openActor(
  settings: Settings,
  store: RegistryStore,
  backend: EmbeddedRegistry = new EmbeddedRegistry(),
) {
  // The sweep and the probes are run by hand here: what the actor schedules is only recorded.
  const { ctx, mailbox, events } = actorTestContext<RegistryCalls>(settings);
  const actor = new RegistryActor(ctx, { store, backend, monitor: new BackendMonitor([]) });
  await actor.start();
  const handle = (msg: Msg): Promise<unknown> => {
    switch (msg.type) {
      case "register":
        return actor.register(msg.input);
      case "health_result":
        return actor.healthResult(msg);
      case "heartbeat":
        return actor.heartbeat(msg);
      default:
        throw new Error(`not sent by these tests: ${msg.type}`);
    }
  };
  const send = (msg: Msg): Promise<unknown> => {
    const key = entityOf(msg);
    return key === undefined ? handle(msg) : mailbox.run(key, () => handle(msg));
  };
  const one = (id: string) => actor.all().find((i) => i.instance_id === id);
  const stored = async (id: string) => (await store.list()).find((i) => i.instance_id === id);
  return { actor, send, one, stored, events, [Symbol.asyncDispose]: () => actor.close() };
}

/** The fields a message decides (times taken from the clock are left out). */
function decided(i: Instance | undefined) {
  if (!i) return undefined;
  return {
    service_url: i.service_url,
    metadata: i.metadata,
    status: i.status,
    last_health_check: i.last_health_check,
    unhealthy: i.unhealthy_since !== null,
    missed_heartbeat: i.missed_heartbeat ?? null,
  };
}

const SERVICE = "svc";

function register(id: string, url: string, extra: Record<string, string> = {}): Msg {
  return {
    type: "register",
    input: { service_name: SERVICE, service_url: url, metadata: { instance_id: id, ...extra } },
  };
}

function healthResult(id: string, healthy: boolean, second: number): Msg {
  return {
    type: "health_result",
    service: SERVICE,
    id,
    healthy,
    checked_at: new Date(Date.UTC(2024, 0, 1, 0, 0, second)).toISOString(),
    reason: healthy ? undefined : "probe failed",
  };
}

Deno.test("concurrent register and health_result for one instance end as if run one at a time, in arrival order", async () => {
  const random = prng(20240101);
  const settings = embeddedSettings();
  // Messages sent all at once, with random I/O delays: the actor under test.
  await using live = await openActor(
    settings,
    jitteryStore(scratchStore(), random),
    new FlakyBackend(random),
  );
  // The same messages, each awaited before the next is sent: what "newest" means.
  await using serial = await openActor(
    settings,
    scratchStore(),
    new FlakyBackend(() => 0),
  );
  const ROUNDS = 300;
  let restored = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const id = `i-${round}`;
    const plan: Msg[] = [];
    if (random() < 0.7) plan.push(register(id, "http://127.0.0.1:8080"));
    const n = 2 + Math.floor(random() * 5);
    for (let k = 0; k < n; k++) {
      if (random() < 0.5) {
        const url = random() < 0.5 ? "http://127.0.0.1:8080" : "http://127.0.0.1:9090";
        // A refused put restores the registration before it (or removes a new one).
        plan.push(register(id, url, random() < 0.35 ? { fail: "yes", v: `${k}` } : { v: `${k}` }));
      } else plan.push(healthResult(id, random() < 0.5, k + 1));
    }
    // The first message sets the stage in both runs; the rest arrive together.
    const [first, ...rest] = plan;
    const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e) => e.name);
    await live.send(first).catch(() => {});
    await serial.send(first).catch(() => {});
    const got = await Promise.all(rest.map((m) => outcome(live.send(m))));
    const want: string[] = [];
    for (const m of rest) want.push(await outcome(serial.send(m)));
    const context = `round ${round}: ${JSON.stringify(plan)}`;
    assert.deepEqual(got, want, `replies, ${context}`);
    assert.deepEqual(decided(live.one(id)), decided(serial.one(id)), `memory, ${context}`);
    assert.deepEqual(decided(await live.stored(id)), decided(live.one(id)), `store, ${context}`);
    if (rest.some((m, i) => m.type === "register" && m.input.metadata.fail && rest[i + 1])) {
      restored++;
    }
  }
  assert.ok(restored > ROUNDS / 4, `rounds where a refused register had a message behind it`);
});

Deno.test("a register whose backend put fails restores prev, and a health_result sent meanwhile applies to prev", async () => {
  const backend = new FlakyBackend(() => 0);
  await using a = await openActor(
    embeddedSettings(),
    scratchStore(),
    backend,
  );
  await a.send(register("a1", "http://127.0.0.1:8080", { v: "1" }));
  const gate = Promise.withResolvers<void>();
  backend.gate = gate.promise;
  const refused = a.send(register("a1", "http://127.0.0.1:9090", { v: "2", fail: "yes" }));
  const checked = a.send(healthResult("a1", true, 7));
  // Both are in flight: let every store write and microtask run before the put fails.
  await sleep(20);
  gate.resolve();
  await assert.rejects(refused, BackendUnavailableError);
  await checked;
  const want = {
    service_url: "http://127.0.0.1:8080",
    metadata: { instance_id: "a1", v: "1" },
    status: "healthy",
    last_health_check: "2024-01-01T00:00:07.000Z",
    unhealthy: false,
    missed_heartbeat: null,
  };
  assert.deepEqual(decided(a.one("a1")), want, "in memory");
  assert.deepEqual(decided(await a.stored("a1")), want, "in the store");
});

Deno.test("the registry worker applies a register and a health_result sent in one turn in arrival order", async () => {
  await using registry = new RegistryClient({ settings: embeddedSettings() });
  await registry.start();
  const input = {
    service_name: SERVICE,
    service_url: "http://127.0.0.1:8080",
    metadata: { instance_id: "w1" },
  };
  await registry.register({ input });
  for (let n = 1; n <= 20; n++) {
    const healthy = n % 2 === 0;
    const checked_at = new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString();
    // One turn: both calls travel in one batch and reach the worker together.
    const [, checked] = await Promise.all([
      registry.register({ input }),
      registry.healthResult({ service: SERVICE, id: "w1", healthy, checked_at }),
    ]);
    const want = healthy ? "healthy" : "unhealthy";
    assert.equal(checked?.status, want, `round ${n}: the outcome`);
    const [now] = await registry.instances({ service: SERVICE });
    assert.deepEqual([now.status, now.last_health_check], [want, checked_at], `round ${n}`);
  }
});

/** Registers a TTL instance, lets its heartbeat lapse, and sweeps: it is marked missed. */
async function missTheHeartbeat(a: Awaited<ReturnType<typeof openActor>>, id: string) {
  await a.send({
    type: "register",
    input: {
      service_name: SERVICE,
      service_url: "http://127.0.0.1:8080",
      metadata: { instance_id: id },
      ttl_seconds: 1,
    },
  });
  await a.send(healthResult(id, true, 1));
  assert.equal(a.one(id)?.status, "healthy");
  await sleep(1_100);
  await a.actor.sweep();
  assert.equal(a.one(id)?.status, "unhealthy", "unhealthy after the missed heartbeat");
  assert.equal(a.one(id)?.missed_heartbeat, "healthy", "restores what the check found");
}

/** A restart keeps the missed mark: a passing check alone does not make it healthy. */
async function staysUnhealthyAcrossRestart(
  open: () => Promise<Awaited<ReturnType<typeof openActor>>>,
) {
  {
    await using before = await open();
    await missTheHeartbeat(before, "ttl-1");
  }
  await using after = await open();
  assert.equal(after.one("ttl-1")?.status, "unhealthy", "restored unhealthy");
  // Before any sweep of the new actor: the mark must come from the record.
  const checked = await after.send(healthResult("ttl-1", true, 2)) as Instance;
  assert.equal(checked.status, "unhealthy", "a passing check does not replace a heartbeat");
  assert.equal(after.one("ttl-1")?.status, "unhealthy");
  assert.equal((await after.stored("ttl-1"))?.status, "unhealthy");
  const beat = await after.send({ type: "heartbeat", service: SERVICE, id: "ttl-1" }) as Instance;
  assert.equal(beat.status, "healthy", "a heartbeat brings back what the checks found");
  assert.equal((await after.stored("ttl-1"))?.missed_heartbeat, null);
}

Deno.test("a TTL instance whose heartbeats stopped stays unhealthy across a restart (SQLite)", async () => {
  const settings = embeddedSettings();
  await staysUnhealthyAcrossRestart(() =>
    openActor(settings, new SqliteRegistryStore(openSqlite(settings.DATA_DIR)))
  );
});

serverTest(
  "PostgreSQL",
  ["DATABASE_URL"],
  "a TTL instance whose heartbeats stopped stays unhealthy across a restart",
  async () => {
    const db = await tempDatabase();
    try {
      await staysUnhealthyAcrossRestart(() =>
        openActor(
          embeddedSettings(),
          new PostgresRegistryStore(createPostgres(db.url, { max: 2 })),
        )
      );
    } finally {
      await db.drop();
    }
  },
);

Deno.test("a TTL instance whose heartbeats stopped stays unhealthy across a service restart", async () => {
  const settings = embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" });
  const ref = { service: "svc-ttl", id: "ttl-1" };
  {
    await using svc = await startService(settings);
    await svc.actors.registry.register({
      input: {
        service_name: ref.service,
        service_url: "http://127.0.0.1:9",
        metadata: { instance_id: ref.id },
        ttl_seconds: 1,
      },
    });
    await waitFor(
      async () => (await svc.actors.registry.all())[0]?.status === "unhealthy",
      5_000,
      "unhealthy after the missed heartbeat",
    );
  }
  await using svc = await startService(settings);
  const after = await svc.actors.registry.healthResult({
    ...ref,
    healthy: true,
    checked_at: new Date().toISOString(),
  });
  assert.equal(after?.status, "unhealthy", "a passing check after the restart");
  const res = await svc.app.request(`/api/v1/registry/services/${ref.service}`);
  assert.equal((await res.json()).instances[0].status, "unhealthy");
});

/** The registry table as the first release created it: no heartbeat column. */
const OLD_DDL = `CREATE TABLE registry_instances (
  service_name TEXT NOT NULL, instance_id TEXT NOT NULL, service_url TEXT NOT NULL,
  health_check_url TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL,
  last_health_check TEXT, registered_at TEXT NOT NULL, ttl_seconds INTEGER,
  last_heartbeat TEXT, unhealthy_since TEXT,
  PRIMARY KEY (service_name, instance_id))`;
const OLD_ROW = `INSERT INTO registry_instances VALUES ('svc', 'old-1', 'http://127.0.0.1:8080',
  'http://127.0.0.1:8080/health', '{}', 'healthy', NULL, '2024-01-01T00:00:00.000Z', NULL, NULL,
  NULL)`;

/**
 * Migrating keeps the old rows (no mark, no check latency) and stores both from then on.
 */
async function migratesAnOldTable(store: RegistryStore) {
  await store.migrate();
  await store.migrate();
  const [old] = await store.list();
  assert.equal(old.instance_id, "old-1");
  assert.equal(old.missed_heartbeat, null);
  assert.equal(old.last_check_latency_ms, null);
  await store.setHealth("svc", "old-1", {
    status: "unhealthy",
    last_health_check: "2024-01-01T00:00:01.000Z",
    last_check_latency_ms: 12.3,
    unhealthy_since: "2024-01-01T00:00:01.000Z",
    missed_heartbeat: "healthy",
  });
  const [now] = await store.list();
  assert.equal(now.missed_heartbeat, "healthy");
  assert.equal(now.last_check_latency_ms, 12.3);
}

Deno.test("SqliteRegistryStore.migrate() adds the heartbeat and check latency columns to an existing table", async () => {
  const dir = tempDir();
  const db = openSqlite(dir);
  db.exec(OLD_DDL);
  db.exec(OLD_ROW);
  db.close();
  const store = new SqliteRegistryStore(openSqlite(dir));
  try {
    await migratesAnOldTable(store);
  } finally {
    await store.close();
  }
});

serverTest(
  "PostgreSQL",
  ["DATABASE_URL"],
  "PostgresRegistryStore.migrate() adds the heartbeat and check latency columns to an existing table",
  async () => {
    const db = await tempDatabase();
    const sql = createPostgres(db.url, { max: 2 });
    try {
      await sql.unsafe(OLD_DDL);
      await sql.unsafe(OLD_ROW);
      await migratesAnOldTable(new PostgresRegistryStore(sql));
    } finally {
      await sql.end({ timeout: 5 }).catch(() => {});
      await db.drop();
    }
  },
);

Deno.test("a registry whose store is unreachable at start answers 503, then loads its records when it can", async () => {
  const inner = scratchStore();
  await inner.migrate();
  await inner.upsert({
    service_name: SERVICE,
    instance_id: "kept-1",
    service_url: "http://127.0.0.1:8080",
    health_check_url: "http://127.0.0.1:8080/health",
    metadata: {},
    status: "healthy",
    last_health_check: null,
    registered_at: new Date().toISOString(),
    ttl_seconds: null,
    last_heartbeat: null,
    unhealthy_since: null,
  });
  let down = true;
  const unreachable = () => Promise.reject(new BackendUnavailableError("storage", "down"));
  const store: RegistryStore = {
    ...inner,
    migrate: () => down ? unreachable() : inner.migrate(),
    list: () => down ? unreachable() : inner.list(),
    upsert: (i) => inner.upsert(i),
    remove: (s, id) => inner.remove(s, id),
    setHealth: (s, id, h) => inner.setHealth(s, id, h),
    heartbeat: (s, id, at) => inner.heartbeat(s, id, at),
    get: (s, id) => inner.get(s, id),
    close: () => inner.close(),
  };
  await using a = await openActor(embeddedSettings(), store);
  // Not "no such service": the records are not known yet.
  assert.throws(() => a.actor.answer(SERVICE, false), BackendUnavailableError);
  await a.actor.load();
  assert.throws(() => a.actor.answer(SERVICE, false), BackendUnavailableError, "still down");
  down = false;
  await a.actor.load();
  assert.match(a.actor.answer(SERVICE, false), /kept-1/);
});
