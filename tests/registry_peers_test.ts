/**
 * Two replicas on one PostgreSQL: each RegistryActor follows what the other writes to the shared
 * records (actors/registry_peers.ts), so either lists, heartbeats and deregisters any instance,
 * and health found by one is seen by the other. Actors without Workers; syncs run by hand.
 */
import assert from "node:assert/strict";
import { BackendMonitor } from "../actors/monitor.ts";
import { instanceKey, RegistryActor } from "../actors/registry_actor.ts";
import type { RegistryCalls } from "../actors/registry_protocol.ts";
import { createPostgres } from "../lib/backends/postgres.ts";
import { BackendUnavailableError, NotFoundError } from "../lib/errors.ts";
import { EmbeddedRegistry } from "../lib/registry/backend.ts";
import { guardedStore, PostgresRegistryStore } from "../lib/registry/store.ts";
import { embeddedSettings, serverTest, sleep } from "./_helpers.ts";
import { tempDatabase } from "./_pg.ts";
import { actorTestContext } from "./_actor.ts";

const SERVICE = "peers";

async function replica(url: string, opts: { slowChangesMs?: number } = {}) {
  const { ctx, mailbox, events } = actorTestContext<RegistryCalls>(
    embeddedSettings({ SERVICE_DEREGISTER_AFTER: "0" }),
  );
  const sql = createPostgres(url, { max: 2 });
  const guarded = guardedStore(new PostgresRegistryStore(sql), 2_000);
  const store = opts.slowChangesMs === undefined ? guarded : {
    ...guarded,
    // What was read arrives late, as from a slow database.
    changes: async (since: number) => {
      const got = await guarded.changes!(since);
      await sleep(opts.slowChangesMs!);
      return got;
    },
  };
  const actor = new RegistryActor(ctx, {
    store,
    backend: new EmbeddedRegistry(),
    monitor: new BackendMonitor([]),
  });
  await actor.start();
  /** Runs a change in the instance's queue, as the actor host does. */
  const inQueue = <T>(id: string, fn: () => Promise<T>) =>
    mailbox.run(instanceKey(SERVICE, id), fn);
  const one = (id: string) => actor.all().find((i) => i.instance_id === id);
  return { actor, inQueue, one, events, sql, [Symbol.asyncDispose]: () => actor.close() };
}

const input = (id: string, ttl?: number) => ({
  service_name: SERVICE,
  service_url: `http://127.0.0.1:9/${id}`,
  metadata: { instance_id: id },
  ...(ttl ? { ttl_seconds: ttl } : {}),
});

serverTest(
  "registry replicas",
  ["DATABASE_URL"],
  "each replica lists, heartbeats and deregisters what the other registered, and sees its health",
  async () => {
    const db = await tempDatabase();
    try {
      await using a = await replica(db.url);
      await using b = await replica(db.url);

      await a.inQueue("i-1", () => a.actor.register(input("i-1", 30)));
      // Before any sync: a heartbeat through b finds the record in the store.
      const beat = await b.inQueue("i-1", () => b.actor.heartbeat({ service: SERVICE, id: "i-1" }));
      assert.equal(beat.instance_id, "i-1");
      assert.ok(b.one("i-1"), "b holds it after the heartbeat");

      await a.inQueue("i-2", () => a.actor.register(input("i-2")));
      assert.equal(b.one("i-2"), undefined, "not yet synced");
      await b.actor.sync();
      assert.equal(b.one("i-2")?.service_url, "http://127.0.0.1:9/i-2", "synced");
      assert.ok(
        b.events.some((e) => e.type === "registry_changed" && e.added.some((t) => t.id === "i-2")),
        "announced to b's HealthActor (the leader checks every instance)",
      );

      // Health found by b (the leader) reaches a.
      await b.inQueue("i-2", () =>
        b.actor.healthResult({
          service: SERVICE,
          id: "i-2",
          healthy: true,
          checked_at: new Date().toISOString(),
        }));
      await a.actor.sync();
      assert.equal(a.one("i-2")?.status, "healthy");
      assert.match(a.actor.answer(SERVICE, true), /i-2/, "a discovers it");

      // Deregistered through b: a forgets it.
      await b.inQueue("i-2", () => b.actor.deregister({ service: SERVICE, id: "i-2" }));
      await a.actor.sync();
      assert.equal(a.one("i-2"), undefined, "a forgot it");
      await assert.rejects(
        () => a.inQueue("i-2", () => a.actor.heartbeat({ service: SERVICE, id: "i-2" })),
        NotFoundError,
      );

      // A re-registration through a after the removal stands on both.
      await a.inQueue("i-2", () => a.actor.register(input("i-2")));
      await b.actor.sync();
      assert.ok(b.one("i-2"), "b sees the new registration, not the old tombstone");
      await a.actor.sync();
      assert.ok(a.one("i-2"), "a keeps it");
    } finally {
      await db.drop();
    }
  },
);

serverTest(
  "registry replicas",
  ["DATABASE_URL"],
  "a record read before this replica's own write does not undo that write",
  async () => {
    const db = await tempDatabase();
    try {
      await using a = await replica(db.url);
      await using b = await replica(db.url, { slowChangesMs: 300 });
      await a.inQueue("r-1", () => a.actor.register(input("r-1", 30)));
      await b.actor.sync();
      assert.equal(b.one("r-1")?.status, "registered");
      // b's next read sees the record as registered; before it arrives, b's own health write
      // makes it healthy. The late record is older than that write and must not undo it.
      const sync = b.actor.sync();
      await b.inQueue("r-1", () =>
        b.actor.healthResult({
          service: SERVICE,
          id: "r-1",
          healthy: true,
          checked_at: new Date().toISOString(),
        }));
      await sync;
      assert.equal(b.one("r-1")?.status, "healthy");
      await b.actor.sync();
      assert.equal(b.one("r-1")?.status, "healthy", "still after the next read");
    } finally {
      await db.drop();
    }
  },
);

serverTest(
  "registry replicas",
  ["DATABASE_URL"],
  "a registry write while PostgreSQL is unreachable is a 503, not a 500",
  async () => {
    const db = await tempDatabase();
    try {
      await using a = await replica(db.url);
      // The pool closed: every query fails as it does when the server went away.
      await a.sql.end({ timeout: 0 });
      const err = await a.inQueue("x", () => a.actor.register(input("x"))).then(
        () => null,
        (e) => e,
      );
      assert.ok(err instanceof BackendUnavailableError, String(err));
      assert.equal(err.status, 503);
    } finally {
      await db.drop();
    }
  },
);
