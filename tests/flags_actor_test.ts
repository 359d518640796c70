/**
 * The FlagActor class without a Worker: a flags file (or a scripted source) in a temporary
 * directory, an SQLite store, and a context whose timers are recorded instead of run. Also
 * the evaluation module alone, over a hand-made view.
 */
import assert from "node:assert/strict";
import { FlagActor, flagsEntity } from "../actors/flags_actor.ts";
import type { FlagCalls } from "../actors/flags_protocol.ts";
import { openSqlite } from "../lib/backends/sqlite.ts";
import { type FlagCache, NoFlagCache } from "../lib/flags/cache.ts";
import { FlagSet } from "../lib/flags/engine.ts";
import { FlagEvaluator } from "../lib/flags/evaluate.ts";
import type { FlagEventSink } from "../lib/flags/event_sink.ts";
import { FileFlagSource, type FlagSource, type SourceFetch } from "../lib/flags/sources.ts";
import { type FlagEvent, type Snapshot, SqliteFlagStore } from "../lib/flags/store.ts";
import { BackendUnavailableError, ValidationError } from "../lib/errors.ts";
import type { Settings } from "../lib/settings.ts";
import { embeddedSettings, tempDir, tempFile } from "./_helpers.ts";
import { actorTestContext } from "./_actor.ts";

const DEV = "development";

function doc(...flags: { name: string; enabled: boolean }[]) {
  return {
    version: 2,
    features: flags.map((f) => ({ ...f, strategies: [{ name: "default" }] })),
    segments: [],
  };
}

const testContext = (settings: Settings) => actorTestContext<FlagCalls>(settings);

/** An event sink that records what it is sent, and fails while `failing` is set. */
class RecordingSink implements FlagEventSink {
  sent: FlagEvent[] = [];
  failing = false;
  closed = false;
  send(events: readonly FlagEvent[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error("bus away"));
    this.sent.push(...events);
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** A source that answers `doc` (or fails while `failing`), counting fetches at once. */
class ScriptedSource implements FlagSource {
  readonly kind = "unleash" as const;
  readonly pollSeconds = 1;
  readonly probe = { name: "flags", kind: "unleash", check: () => Promise.resolve() };
  doc: unknown = doc({ name: "on", enabled: true });
  failing = false;
  /** Resolves fetches; while null they answer at once. */
  gate: Promise<void> | null = null;
  running = 0;
  maxRunning = 0;
  async fetch(): Promise<SourceFetch> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.gate) await this.gate;
      if (this.failing) throw new Error("Unleash away");
      return { status: 200, etag: null, doc: this.doc };
    } finally {
      this.running--;
    }
  }
}

function evaluate(actor: FlagActor, flag: string) {
  return JSON.parse(
    actor.evaluate("evaluate", JSON.stringify({ flag_name: flag, environment: DEV })),
  ) as { value: unknown; reason: string; error_code?: string };
}

function fileActor(over: Record<string, string> = {}) {
  const path = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(path, JSON.stringify(doc({ name: "dark-mode", enabled: true })));
  const settings = embeddedSettings({ FLAGS_FILE: path, ...over });
  const store = new SqliteFlagStore(openSqlite(tempDir()));
  const events = new RecordingSink();
  const actor = new FlagActor(settings, {
    source: new FileFlagSource(path),
    store,
    cache: new NoFlagCache(),
    events,
  });
  return { actor, settings, path, store, events };
}

/** A FlagActor over a scripted source and a migrated SQLite store in a new directory. */
async function scriptedActor(settings: Settings) {
  const source = new ScriptedSource();
  const store = new SqliteFlagStore(openSqlite(tempDir()));
  await store.migrate();
  const actor = new FlagActor(settings, {
    source,
    store,
    cache: new NoFlagCache(),
    events: new RecordingSink(),
  });
  return { actor, source };
}

Deno.test("FlagActor evaluates the flags file after start, and a change after the next poll", async () => {
  const { actor, settings, path, store, events } = fileActor();
  await store.migrate();
  const t = testContext(settings);
  try {
    await actor.start(t.ctx);
    assert.deepEqual(evaluate(actor, "dark-mode"), {
      flag_name: "dark-mode",
      value: true,
      reason: "STATIC",
      variant: "enabled",
      environment: DEV,
    });
    // A file source polls at once, then relays and probes.
    assert.deepEqual(
      t.scheduled.map((s) => [s.msg.type, s.ms]).sort(),
      [["poll", 0], ["probe", 0], ["relay", 0]],
    );

    Deno.writeTextFileSync(
      path,
      JSON.stringify(doc({ name: "dark-mode", enabled: false }, { name: "beta", enabled: true })),
    );
    await actor.poll(t.ctx);
    assert.equal(evaluate(actor, "dark-mode").reason, "DISABLED");
    assert.equal(evaluate(actor, "beta").value, true);
    assert.deepEqual(t.scheduled.at(-1), { ms: 1_000, msg: { type: "poll" } });

    // The change's events went to the outbox; the relay hands them to the sink.
    await actor.relay(t.ctx);
    assert.deepEqual(
      events.sent.map((e) => [e.environment, e.flag, e.change]).filter(([e]) => e === DEV).sort(),
      [[DEV, "beta", "created"], [DEV, "dark-mode", "disabled"]],
    );
    const families = actor.metrics();
    const defs = families.find((f) => f.name === "flag_definitions")!;
    assert.ok(
      defs.samples.some((s) =>
        s.labels?.environment === DEV && s.labels.freshness === "live" && s.value === 2
      ),
      JSON.stringify(defs.samples),
    );
    const reasons = families.find((f) => f.name === "flag_evaluations_total")!;
    assert.ok(reasons.samples.some((s) => s.labels?.reason === "DISABLED" && s.value === 1));
  } finally {
    t.abort();
    await actor.stop(t.ctx);
  }
  assert.ok(events.closed, "stop closes the event sink");
});

Deno.test("FlagActor relay backs off while the sink fails and keeps the events queued", async () => {
  const { actor, settings, path, store, events } = fileActor();
  await store.migrate();
  const t = testContext(settings);
  try {
    await actor.start(t.ctx);
    Deno.writeTextFileSync(path, JSON.stringify(doc({ name: "dark-mode", enabled: false })));
    events.failing = true;
    await actor.poll(t.ctx);
    await actor.relay(t.ctx);
    await actor.relay(t.ctx);
    const relays = t.scheduled.filter((s) => s.msg.type === "relay").map((s) => s.ms);
    assert.deepEqual(relays.slice(-2), [500, 1_000]);
    assert.equal(events.sent.length, 0);
    events.failing = false;
    await actor.relay(t.ctx);
    assert.equal(t.scheduled.at(-1)?.ms, 5_000);
    assert.ok(events.sent.some((e) => e.flag === "dark-mode" && e.change === "disabled"));
  } finally {
    t.abort();
    await actor.stop(t.ctx);
  }
});

Deno.test("FlagActor sync answers the flags synced; a failing source is a BackendUnavailableError", async () => {
  const settings = embeddedSettings({ UNLEASH_AUTO_SYNC_ON_STARTUP: "true" });
  const { actor, source } = await scriptedActor(settings);
  const t = testContext(settings);
  try {
    await actor.start(t.ctx);
    const r = JSON.parse(await actor.sync(DEV, t.ctx));
    assert.deepEqual([r.environment, r.flags_synced], [DEV, 1]);
    assert.ok(!Number.isNaN(Date.parse(r.timestamp)));
    source.failing = true;
    await assert.rejects(
      actor.sync(DEV, t.ctx),
      (err) => err instanceof BackendUnavailableError && /Unleash away/.test(err.message),
    );
    // Evaluation goes on from the last definitions.
    assert.deepEqual([evaluate(actor, "on").value, evaluate(actor, "on").reason], [true, "STATIC"]);
  } finally {
    t.abort();
    await actor.stop(t.ctx);
  }
});

Deno.test("FlagActor runs one sync of an environment at a time: a poll waits for a sync", async () => {
  const settings = embeddedSettings({ SUPPORTED_ENVIRONMENTS: DEV });
  const { actor, source } = await scriptedActor(settings);
  const t = testContext(settings);
  try {
    const { promise, resolve } = Promise.withResolvers<void>();
    source.gate = promise;
    // As the host runs a `sync` message: in the environment's mailbox queue.
    const sync = t.ctx.exclusive(flagsEntity(DEV), () => actor.sync(DEV, t.ctx));
    const poll = actor.poll(t.ctx, false);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(source.running, 1, "the poll's fetch waits for the sync's");
    resolve();
    await Promise.all([sync, poll]);
    assert.equal(source.maxRunning, 1);
    assert.equal(evaluate(actor, "on").value, true);
  } finally {
    t.abort();
    await actor.stop(t.ctx);
  }
});

Deno.test("FlagActor restarts from the store, or the cache when it holds newer definitions", async () => {
  const settings = embeddedSettings();
  const dir = tempDir();
  const source = new ScriptedSource();
  const first = new SqliteFlagStore(openSqlite(dir));
  await first.migrate();
  {
    const actor = new FlagActor(settings, {
      source,
      store: first,
      cache: new NoFlagCache(),
      events: new RecordingSink(),
    });
    const t = testContext(settings);
    await actor.sync(DEV, t.ctx);
    t.abort();
    await actor.stop(t.ctx);
  }

  // The source is away at the restart: the stored definitions answer, as CACHED.
  source.failing = true;
  const again = new SqliteFlagStore(openSqlite(dir));
  const cached: Snapshot = {
    environment: "staging",
    hash: "h",
    etag: null,
    doc: JSON.stringify(doc({ name: "from-cache", enabled: true })),
    synced_at: new Date().toISOString(),
  };
  const cache: FlagCache = {
    put: () => Promise.resolve(false),
    get: (env) => Promise.resolve(env === "staging" ? cached : null),
    close: () => Promise.resolve(),
  };
  const actor = new FlagActor(settings, {
    source,
    store: again,
    cache,
    events: new RecordingSink(),
  });
  const t = testContext(settings);
  try {
    await actor.start(t.ctx);
    assert.deepEqual([evaluate(actor, "on").value, evaluate(actor, "on").reason], [true, "CACHED"]);
    const staging = JSON.parse(
      actor.evaluate(
        "boolean",
        JSON.stringify({ flag_name: "from-cache", environment: "staging" }),
      ),
    );
    assert.deepEqual([staging.value, staging.reason], [true, "CACHED"]);
    assert.throws(() => actor.list("production"), BackendUnavailableError);
  } finally {
    t.abort();
    await actor.stop(t.ctx);
  }
});

Deno.test("FlagEvaluator answers from a read-only view, with no actor", async () => {
  const set = FlagSet.from(doc({ name: "on", enabled: true }), "test");
  const ev = new FlagEvaluator({
    environments: [DEV, "production"],
    defaultEnvironment: DEV,
    sourceKind: "file",
    definitions: (env) => env === DEV ? { set, freshness: "live" } : undefined,
  }, { fallback: true });
  assert.deepEqual(
    JSON.parse(ev.evaluate("bulk", JSON.stringify({ flags: [{ flag_name: "on" }] }))),
    {
      on: { value: true, reason: "STATIC" },
    },
  );
  assert.throws(
    () => ev.evaluate("evaluate", JSON.stringify({ flag_name: "on", environment: "nowhere" })),
    ValidationError,
  );
  assert.deepEqual(JSON.parse(ev.list(DEV)), [{ name: "on", enabled: true }]);
  assert.throws(() => ev.get("production", "on"), /No flag definitions for production yet/);
  const all = await ev.ofrep({ key: null, env: null, body: "", inm: null });
  assert.equal(all.status, 200);
  const again = await ev.ofrep({ key: null, env: null, body: "", inm: all.etag! });
  assert.equal(again.status, 304);
  const missing = await ev.ofrep({ key: "nope", env: DEV, body: "{}", inm: null });
  assert.deepEqual([missing.status, JSON.parse(missing.body).errorCode], [404, "FLAG_NOT_FOUND"]);
});
