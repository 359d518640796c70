/**
 * The ConfigActor driven directly, without a Worker: an embedded SQLite store in a temporary
 * directory, in-memory adapters, and a context that records what the actor emits and
 * schedules instead of running it.
 */
import assert from "node:assert/strict";
import type { ActorContext } from "../actors/actor_host.ts";
import { ConfigActor, type ConfigBackends, configEntityOf } from "../actors/config_actor.ts";
import { openConfigBackends } from "../actors/config_backends.ts";
import type { ConfigCalls } from "../actors/config_protocol.ts";
import type { ActorEvent, MessageOf } from "../actors/protocol.ts";
import {
  LocalRelayLock,
  MemoryL2Cache,
  MemoryOutboxSink,
  type OutboxMessage,
} from "../lib/config/adapters.ts";
import { OutboxRelay, RELAY_MS } from "../lib/config/outbox_relay.ts";
import { SqliteConfigStore } from "../lib/config/sqlite_store.ts";
import { openSqlite } from "../lib/backends/sqlite.ts";
import {
  BackendUnavailableError,
  deserializeError,
  NotFoundError,
  serializeError,
} from "../lib/errors.ts";
import { embeddedSettings, tempDir } from "./_helpers.ts";

/** A context that records events and self-messages; deferred and exclusive work runs now. */
function recordingContext() {
  const events: ActorEvent[] = [];
  const scheduled: { ms: number; type: string }[] = [];
  const abort = new AbortController();
  const ctx: ActorContext<ConfigCalls> = {
    settings: embeddedSettings({ DATA_DIR: tempDir() }),
    options: {},
    signal: abort.signal,
    emit: (e) => events.push(e),
    after: (ms: number, msg: MessageOf<ConfigCalls>) => scheduled.push({ ms, type: msg.type }),
    defer: (fn) => Promise.resolve().then(fn),
    exclusive: (_key, fn) => Promise.resolve().then(fn),
  };
  return { ctx, events, scheduled, abort };
}

/** An actor on the settings' embedded backends, with `over` replacing some of them. */
async function startActor(over: Partial<ConfigBackends> = {}) {
  const rec = recordingContext();
  const backends = { ...await openConfigBackends(rec.ctx.settings), ...over };
  const actor = new ConfigActor(rec.ctx, backends);
  await actor.start();
  return {
    ...rec,
    actor,
    async [Symbol.asyncDispose]() {
      rec.abort.abort();
      await actor.stop();
    },
  };
}

/** `store` whose every call fails while `switch.down` is true, as when its server is gone. */
function switchable<T extends object>(store: T): { store: T; switch: { down: boolean } } {
  const sw = { down: false };
  const proxy = new Proxy(store, {
    get(target, p) {
      const v = Reflect.get(target, p, target);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) =>
        sw.down ? Promise.reject(new Error("connection refused")) : v.apply(target, args);
    },
  });
  return { store: proxy, switch: sw };
}

const id = { environment: "development", service: "", key: "model_path" };
const write = { id, value: '"/models/a"', secret: false, description: null, by: "test" };

Deno.test("a ConfigActor opens its store, writes, reads back and tails without a Worker", async () => {
  await using a = await startActor();
  assert.ok(a.actor.storeReady, "the store opened in start()");
  assert.ok(a.scheduled.some((s) => s.type === "tail_tick"), "the periodic tail is scheduled");

  const res = await a.actor.writes.create(write);
  assert.equal(res.seq, 1);
  assert.equal(res.entry.value, "/models/a");
  assert.equal(a.actor.index, 1, "the index covers the write before the tail ran");
  assert.ok(a.scheduled.some((s) => s.type === "tail"), "a write nudges the tail");

  const got = await a.actor.reads.get({ ...id, service: "svc" });
  assert.equal(JSON.parse(got.body).value, "/models/a", "the service scope falls back to global");
  assert.equal(got.stale, false);
  assert.equal(got.etag, res.etag);

  await a.actor.tail();
  const changes = a.events.filter((e) => e.type === "config_changes");
  assert.equal(changes.length, 1, "the tail reported the change once");
  assert.deepEqual(
    changes[0].type === "config_changes" && changes[0].changes.map((c) => [c.seq, c.key]),
    [[1, "model_path"]],
  );
  const list = await a.actor.list({ environment: "development", limit: 10, offset: 0 });
  assert.equal(list.index, 1);
  assert.equal(JSON.parse(list.body).length, 1);

  await a.actor.writes.delete({ id, by: "test" });
  await assert.rejects(async () => await a.actor.reads.get(id), NotFoundError);
  assert.equal(a.actor.index, 2);
});

Deno.test("a ConfigActor relays its outbox through the sink it was given", async () => {
  const sink = new MemoryOutboxSink();
  await using a = await startActor({ outbox: { sink, lock: new LocalRelayLock() } });
  assert.ok(a.scheduled.some((s) => s.type === "relay_tick"), "relaying is scheduled");
  await a.actor.writes.create(write);
  await a.actor.writes.update({ id, value: '"/models/b"', by: "test" });
  await a.actor.relayTick();
  assert.deepEqual(sink.sent.map((m: OutboxMessage) => [m.key, JSON.parse(m.value).type]), [
    ["development//model_path", "created"],
    ["development//model_path", "updated"],
  ]);
  assert.deepEqual(await a.actor.outbox(), { backlog: 0, relaying: true });
});

Deno.test("a ConfigActor fills and reads the L2 cache it was given", async () => {
  const l2 = new MemoryL2Cache();
  await using a = await startActor({ l2 });
  await a.actor.writes.create(write);
  await a.actor.tail();
  await a.actor.probe();
  assert.equal(l2.dirty, false, "repaired once the store opened");
  assert.equal((await l2.get(id))?.value, '"/models/a"', "the write reached L2");
});

Deno.test("a ConfigActor whose store never opened answers 503 and retries", async () => {
  const rec = recordingContext();
  const backends = await openConfigBackends(rec.ctx.settings);
  const store = backends.store;
  store.migrate = () => Promise.reject(new Error("connection refused"));
  const actor = new ConfigActor(rec.ctx, backends);
  await actor.start();
  assert.equal(actor.storeReady, false);
  assert.ok(rec.scheduled.some((s) => s.type === "open"), "opening is retried");
  await assert.rejects(async () => await actor.reads.get(id), BackendUnavailableError);
  assert.equal(actor.tail(), undefined, "no tail before the store opened");
  rec.abort.abort();
  await actor.stop();
});

Deno.test("configEntityOf() keys writes by entry and leaves reads unkeyed", () => {
  const other = { ...id, key: "other" };
  assert.equal(configEntityOf({ type: "get", id }), undefined);
  assert.equal(configEntityOf({ type: "list", limit: 1, offset: 0 }), undefined);
  const k = configEntityOf({ type: "delete", id, by: "x" });
  assert.ok(k);
  assert.equal(configEntityOf({ type: "update", id, value: "1", by: "y" }), k);
  assert.notEqual(configEntityOf({ type: "create", ...write, id: other }), k);
});

Deno.test("OutboxRelay backs off while its sink fails and keeps the backlog", async () => {
  const store = new SqliteConfigStore(openSqlite(tempDir()));
  await store.migrate();
  const sink = new MemoryOutboxSink();
  const relay = new OutboxRelay({
    store,
    sink,
    lock: new LocalRelayLock(),
    signal: new AbortController().signal,
  });
  try {
    await store.write({ kind: "create", ...write });
    sink.failing = true;
    assert.equal(await relay.run(), 200, "the first retry comes soon");
    assert.equal(await relay.run(), 400, "then later");
    assert.equal(await store.backlog(), 1, "nothing is marked sent");
    sink.failing = false;
    assert.equal(await relay.run(), RELAY_MS);
    assert.equal(sink.sent.length, 1);
    assert.equal(await store.backlog(), 0);
  } finally {
    await store.close();
  }
});

/** A ConfigActor on `settings` whose store never opens (unreachable since start). */
async function startCold(settings: ActorContext<ConfigCalls>["settings"], over = {}) {
  const rec = recordingContext();
  const ctx = { ...rec.ctx, settings };
  const backends = { ...await openConfigBackends(settings), ...over };
  backends.store.migrate = () => Promise.reject(new Error("connection refused"));
  const actor = new ConfigActor(ctx, backends);
  await actor.start();
  return {
    actor,
    async [Symbol.asyncDispose]() {
      rec.abort.abort();
      await actor.stop();
    },
  };
}

Deno.test("a ConfigActor restarted with its store down answers what it read before from its snapshot, stale", async () => {
  const rec = recordingContext();
  const settings = rec.ctx.settings;
  const before = new ConfigActor(rec.ctx, await openConfigBackends(settings));
  await before.start();
  await before.writes.create(write);
  await before.writes.create({ ...write, id: { ...id, key: "secret" }, secret: true });
  const read = await before.reads.get({ ...id, service: "svc" });
  const secret = await before.reads.get({ ...id, key: "secret" });
  rec.abort.abort();
  await before.stop();

  await using after = await startCold(settings);
  assert.equal(after.actor.storeReady, false);
  const again = await after.actor.reads.get({ ...id, service: "svc" });
  assert.deepEqual(again, { ...read, stale: true }, "the service scope's known absence too");
  assert.deepEqual(await after.actor.reads.get({ ...id, key: "secret" }), {
    ...secret,
    stale: true,
  });
  await assert.rejects(
    async () => await after.actor.reads.get({ ...id, key: "never-read" }),
    BackendUnavailableError,
  );
});

Deno.test("a ConfigActor whose store is down reads an L2 not yet repaired, stale", async () => {
  const l2 = new MemoryL2Cache();
  const entry = {
    ...id,
    value: '"/models/l2"',
    secret: false,
    description: null,
    version: 3,
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:00:00.000Z",
    updated_by: "test",
  };
  await l2.putIfNewer(id, 3, entry);
  assert.equal(l2.dirty, true);
  await using a = await startCold(embeddedSettings({ DATA_DIR: tempDir() }), { l2 });
  const got = await a.actor.reads.get(id);
  assert.equal(got.stale, true);
  assert.equal(JSON.parse(got.body).value, "/models/l2");
});

Deno.test("a read that began before this actor's own write never caches the older version over it", async () => {
  const rec = recordingContext();
  const backends = await openConfigBackends(rec.ctx.settings);
  const store = backends.store;
  let release: () => void = () => {};
  let held = false;
  const gate = () => new Promise<void>((r) => release = r);
  // Reads now, answers when released: a slow store read of what was there before.
  const slowGet = async (...args: Parameters<typeof store.get>) => {
    const got = await store.get(...args);
    if (held) await gate();
    return got;
  };
  const slowStore = new Proxy(store, {
    get(target, p) {
      if (p === "get") return slowGet;
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  const actor = new ConfigActor(rec.ctx, { ...backends, store: slowStore });
  await actor.start();
  try {
    // Written behind the actor's back: its cache does not hold the entry, so the next GET loads.
    await store.write({ kind: "create", ...write });
    held = true;
    const slow = actor.reads.get(id);
    await new Promise((r) => setTimeout(r, 50)); // the read is under way, past the store
    held = false;
    const w = await actor.writes.update({ id, value: '"/models/b"', secret: false, by: "test" });
    assert.equal(w.entry.version, 2);
    release();
    const old = await slow;
    assert.equal(JSON.parse(old.body).version, 1, "the slow read answers what it read");
    const now = await actor.reads.get(id);
    assert.equal(JSON.parse(now.body).version, 2, "the write stays cached, not the slow read");
  } finally {
    rec.abort.abort();
    await actor.stop();
  }
});

for (const kind of ["update", "delete"] as const) {
  Deno.test(`an own ${kind} answered after the tail cached another replica's later write does not replace it`, async () => {
    const rec = recordingContext();
    const backends = await openConfigBackends(rec.ctx.settings);
    const store = backends.store;
    // Writes commit at once; while `hold` is set their answer waits for it.
    let hold: Promise<void> | null = null;
    let committed = () => {};
    const held = new Proxy(store, {
      get(target, p) {
        if (p === "write") {
          return async (op: Parameters<typeof store.write>[0]) => {
            const res = await store.write(op);
            if (hold) {
              committed();
              await hold;
            }
            return res;
          };
        }
        const v = Reflect.get(target, p, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const actor = new ConfigActor(rec.ctx, { ...backends, store: held });
    await actor.start();
    try {
      await actor.writes.create(write);
      let release = () => {};
      hold = new Promise((r) => release = r);
      const wasCommitted = new Promise<void>((r) => committed = r);
      const mine = kind === "update"
        ? actor.writes.update({ id, value: '"/models/mine"', secret: false, by: "test" })
        : actor.writes.delete({ id, by: "test" });
      await wasCommitted; // version 2 is committed, its answer held
      hold = null;
      // Another replica writes version 3; this actor's tail caches it before its own answer.
      const other = kind === "update"
        ? await store.write({
          kind: "update",
          id,
          value: '"/models/other"',
          secret: false,
          by: "o",
        })
        : await store.write({ kind: "create", ...write, value: '"/models/other"', by: "o" });
      assert.equal(other.entry?.version, 3);
      await actor.tail();
      release();
      assert.equal((await mine).entry.version, 2);
      const got = await actor.reads.get(id);
      assert.equal(JSON.parse(got.body).version, 3, "the later version stays cached");
      assert.equal(got.stale, false);
    } finally {
      rec.abort.abort();
      await actor.stop();
    }
  });
}

Deno.test("another replica's change replaces the cached entry, so a store outage cannot answer an older one", async () => {
  const rec = recordingContext();
  const backends = await openConfigBackends(rec.ctx.settings);
  const store = backends.store;
  const failing = switchable(store);
  const actor = new ConfigActor(rec.ctx, { ...backends, store: failing.store });
  await actor.start();
  try {
    await actor.writes.create(write);
    assert.equal(JSON.parse((await actor.reads.get(id)).body).version, 1);
    // Another replica's update, seen by this actor's tail.
    await store.write({ kind: "update", id, value: '"/models/b"', secret: false, by: "other" });
    await actor.tail();
    failing.switch.down = true;
    const got = await actor.reads.get(id);
    assert.equal(JSON.parse(got.body).version, 2, "the tail's version, from the cache");
  } finally {
    failing.switch.down = false;
    rec.abort.abort();
    await actor.stop();
  }
});

Deno.test("a reconnect of the invalidation channel keeps the cache (the tail keeps it current)", async () => {
  const rec = recordingContext();
  const backends = await openConfigBackends(rec.ctx.settings);
  let handlers: { message(): void; reconnected(): void } | undefined;
  const channel = {
    publish() {},
    listen: (h: typeof handlers) => handlers = h,
    close: async () => {},
  };
  const { store, switch: failing } = switchable(backends.store);
  const actor = new ConfigActor(rec.ctx, { ...backends, store, channel });
  await actor.start();
  try {
    await actor.writes.create(write);
    failing.down = true;
    // Redis came back during a store outage.
    handlers!.reconnected();
    const got = await actor.reads.get(id);
    assert.equal(JSON.parse(got.body).version, 1, "still answered from the cache");
    assert.ok(rec.scheduled.some((s) => s.type === "tail"), "the reconnect asks for a tail");
  } finally {
    failing.down = false;
    rec.abort.abort();
    await actor.stop();
  }
});

Deno.test("a known absence answered while the store is failing is a stale 404", async () => {
  const rec = recordingContext();
  const backends = await openConfigBackends(rec.ctx.settings);
  const { store, switch: failing } = switchable(backends.store);
  const actor = new ConfigActor(rec.ctx, { ...backends, store });
  await actor.start();
  try {
    const fresh = await (async () => await actor.reads.get(id))().catch((e) => e);
    assert.ok(fresh instanceof NotFoundError);
    assert.equal(fresh.extra.stale, undefined, "the store answered: not stale");
    failing.down = true;
    await actor.tail(); // fails: the store is failing now
    const old = await (async () => await actor.reads.get(id))().catch((e) => e);
    assert.ok(old instanceof NotFoundError, String(old));
    assert.equal(old.extra.stale, true, "known absent from the cache, store failing");
    // Across the worker boundary too.
    const back = deserializeError(serializeError(old));
    assert.ok(back instanceof NotFoundError);
    assert.equal((back as NotFoundError).extra.stale, true);
  } finally {
    failing.down = false;
    rec.abort.abort();
    await actor.stop();
  }
});
