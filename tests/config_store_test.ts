/**
 * One contract suite for `ConfigStore`, run against the embedded SQLite store (always) and
 * the PostgreSQL store (when `DATABASE_URL` is set: `eval "$(bash scripts/stack.sh env)"`).
 * Every case gets a fresh store: a new temp dir for SQLite, a new schema for PostgreSQL.
 */
import assert from "node:assert/strict";
import { openSqlite } from "../lib/backends/sqlite.ts";
import { createPostgres } from "../lib/backends/postgres.ts";
import { SqliteConfigStore } from "../lib/config/sqlite_store.ts";
import { PostgresConfigStore } from "../lib/config/postgres_store.ts";
import type { ConfigStore, WriteResult } from "../lib/config/store.ts";
import type { EntryId, StoredEntry } from "../lib/config/model.ts";
import { ConflictError, NotFoundError, PreconditionFailedError } from "../lib/errors.ts";
import { serverTest, sleep, tempDir } from "./_helpers.ts";

type Made = { store: ConfigStore; cleanup: () => Promise<void> };
type Register = (caseName: string, fn: () => Promise<void>) => void;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function eid(key: string, service = "", environment = "dev"): EntryId {
  return { environment, service, key };
}

function create(
  store: ConfigStore,
  id: EntryId,
  value: unknown,
  more: { secret?: boolean; description?: string | null; by?: string } = {},
): Promise<WriteResult> {
  return store.write({
    kind: "create",
    id,
    value: JSON.stringify(value),
    secret: more.secret ?? false,
    description: more.description ?? null,
    by: more.by ?? "alice",
  });
}

function update(
  store: ConfigStore,
  id: EntryId,
  value: unknown,
  more: { secret?: boolean; description?: string | null; by?: string; ifVersion?: number } = {},
): Promise<WriteResult> {
  return store.write({
    kind: "update",
    id,
    value: JSON.stringify(value),
    secret: more.secret ?? false,
    ...("description" in more ? { description: more.description } : {}),
    by: more.by ?? "bob",
    ifVersion: more.ifVersion,
  });
}

function del(store: ConfigStore, id: EntryId, ifVersion?: number): Promise<WriteResult> {
  return store.write({ kind: "delete", id, by: "carol", ifVersion });
}

function rollback(
  store: ConfigStore,
  id: EntryId,
  toVersion: number,
  ifVersion?: number,
): Promise<WriteResult> {
  return store.write({ kind: "rollback", id, toVersion, by: "dave", ifVersion });
}

const triple = (e: EntryId) => `${e.environment}/${e.service}/${e.key}`;
const triples = (es: EntryId[]) => es.map(triple);

/** Registers every case of the contract for the store `make` builds. */
function contract(
  name: string,
  make: () => Promise<Made>,
  register: Register = (caseName, fn) => Deno.test(`${name} store: ${caseName}`, fn),
): void {
  const t = (caseName: string, fn: (store: ConfigStore) => Promise<void>) =>
    register(caseName, async () => {
      const { store, cleanup } = await make();
      try {
        assert.equal(store.kind, name);
        await fn(store);
      } finally {
        await cleanup();
      }
    });

  t("migrate() twice is idempotent and keeps the data", async (store) => {
    await create(store, eid("k"), 1);
    await store.migrate();
    await store.migrate();
    assert.equal((await store.get(eid("k")))?.value, "1");
    await create(store, eid("k2"), 2);
    assert.equal((await store.list({ limit: 10, offset: 0 })).length, 2);
  });

  t("create then get returns version 1 and the change is seq > 0, created, UUID", async (s) => {
    assert.equal(await s.maxSeq(), 0);
    assert.equal(await s.get(eid("db.host")), null);
    const value = { host: "db", port: 5432, tags: ["a", "b"] };
    const r = await create(s, eid("db.host", "api"), value, {
      secret: true,
      description: "the database",
      by: "alice",
    });
    const got = await s.get(eid("db.host", "api"));
    assert.ok(got);
    assert.deepEqual(got, r.entry);
    assert.equal(got.environment, "dev");
    assert.equal(got.service, "api");
    assert.equal(got.key, "db.host");
    assert.equal(got.version, 1);
    assert.equal(got.value, JSON.stringify(value));
    assert.deepEqual(JSON.parse(got.value), value);
    assert.equal(got.secret, true);
    assert.equal(got.description, "the database");
    assert.equal(got.created_at, got.updated_at);
    assert.ok(!Number.isNaN(Date.parse(got.created_at)));
    assert.equal(got.updated_by, "alice");

    const c = r.change;
    assert.ok(c.seq > 0);
    assert.equal(c.type, "created");
    assert.match(c.event_id, UUID_RE);
    assert.equal(c.version, 1);
    assert.equal(c.value, got.value);
    assert.equal(c.secret, true);
    assert.equal(c.description, "the database");
    assert.equal(c.created_at, got.created_at);
    assert.equal(c.updated_at, got.updated_at);
    assert.equal(c.updated_by, "alice");
    assert.deepEqual(await s.changesSince(0, {}, 10), [c]);
    assert.equal(await s.maxSeq(), c.seq);

    const h = await s.history(eid("db.host", "api"), 10, 0);
    assert.equal(h.length, 1);
    assert.equal(h[0].version, 1);
    assert.equal(h[0].change_type, "created");
    assert.equal(h[0].value, got.value);
    assert.equal(h[0].updated_by, "alice");
  });

  t(
    "create of an existing id throws ConflictError; global and service ids are distinct",
    async (s) => {
      await create(s, eid("k"), "global");
      await assert.rejects(create(s, eid("k"), "again"), ConflictError);
      assert.equal((await s.get(eid("k")))?.value, '"global"');
      assert.equal(await s.maxSeq(), (await s.changesSince(0, {}, 10))[0].seq);
      assert.equal((await s.changesSince(0, {}, 10)).length, 1);

      const svc = await create(s, eid("k", "api"), "service");
      assert.equal(svc.entry?.version, 1);
      await create(s, eid("k", "", "prod"), "prod");
      assert.equal((await s.get(eid("k")))?.value, '"global"');
      assert.equal((await s.get(eid("k", "api")))?.value, '"service"');
      assert.equal((await s.get(eid("k", "", "prod")))?.value, '"prod"');
      assert.equal(await s.get(eid("k", "web")), null);
      await assert.rejects(create(s, eid("k", "api"), "x"), ConflictError);
    },
  );

  t("update bumps the version, keeps created_at and checks ifVersion", async (s) => {
    const id = eid("k");
    const c = await create(s, id, 1, { description: "first", by: "alice" });
    await sleep(5);
    const u = await update(s, id, 2, { by: "bob" });
    assert.equal(u.change.type, "updated");
    assert.ok(u.change.seq > c.change.seq);
    const got = await s.get(id);
    assert.ok(got);
    assert.deepEqual(got, u.entry);
    assert.equal(got.version, 2);
    assert.equal(got.value, "2");
    assert.equal(got.created_at, c.entry!.created_at);
    assert.notEqual(got.updated_at, got.created_at);
    assert.ok(got.updated_at > got.created_at);
    assert.equal(got.updated_by, "bob");
    assert.equal(got.description, "first", "description: undefined keeps it");

    await update(s, id, 3, { description: null, ifVersion: 2 });
    assert.equal((await s.get(id))?.description, null, "description: null clears it");
    await update(s, id, 4, { description: "again", ifVersion: 3 });
    const before = await s.get(id);
    assert.equal(before?.version, 4);
    assert.equal(before?.description, "again");

    const seq = await s.maxSeq();
    await assert.rejects(update(s, id, 99, { ifVersion: 3 }), PreconditionFailedError);
    await assert.rejects(del(s, id, 1), PreconditionFailedError);
    await assert.rejects(rollback(s, id, 1, 2), PreconditionFailedError);
    assert.deepEqual(await s.get(id), before);
    assert.equal(await s.maxSeq(), seq);
    assert.equal((await s.history(id, 100, 0)).length, 4);

    await assert.rejects(update(s, eid("missing"), 1), NotFoundError);
    await assert.rejects(update(s, eid("k", "api"), 1), NotFoundError);
    await assert.rejects(del(s, eid("missing")), NotFoundError);
    assert.equal(await s.maxSeq(), seq);
  });

  t("delete removes the entry, history keeps it, re-create continues the versions", async (s) => {
    const id = eid("k", "api");
    await create(s, id, "a");
    await update(s, id, "b");
    const d = await del(s, id);
    assert.equal(d.entry, null);
    assert.equal(d.change.type, "deleted");
    assert.equal(d.change.version, 3);
    assert.equal(d.change.value, null);
    assert.equal(await s.get(id), null);
    assert.deepEqual(await s.list({ limit: 10, offset: 0 }), []);
    await assert.rejects(del(s, id), NotFoundError);
    await assert.rejects(update(s, id, "x"), NotFoundError);

    const h = await s.history(id, 10, 0);
    assert.deepEqual(h.map((x) => [x.version, x.change_type, x.value]), [
      [3, "deleted", null],
      [2, "updated", '"b"'],
      [1, "created", '"a"'],
    ]);
    assert.equal(h[0].updated_by, "carol");

    await sleep(5);
    const again = await create(s, id, "c");
    assert.equal(again.entry?.version, 4);
    assert.equal(again.change.type, "created");
    const got = await s.get(id);
    assert.equal(got?.version, 4);
    assert.equal(got?.value, '"c"');
    assert.equal(got?.created_at, got?.updated_at, "a re-created entry is new");
    assert.deepEqual((await s.history(id, 10, 0)).map((x) => x.version), [4, 3, 2, 1]);
  });

  t(
    "rollback writes a new version with the old value; missing or deleted targets are 404",
    async (s) => {
      const id = eid("k");
      const c = await create(s, id, { v: 1 }, { description: "one", secret: false });
      await update(s, id, { v: 2 }, { description: "two", secret: true });
      await sleep(5);
      const r = await rollback(s, id, 1);
      assert.equal(r.change.type, "rolled_back");
      assert.equal(r.change.version, 3);
      assert.equal(r.change.value, '{"v":1}');
      const got = await s.get(id);
      assert.ok(got);
      assert.deepEqual(got, r.entry);
      assert.equal(got.version, 3);
      assert.equal(got.value, '{"v":1}');
      assert.equal(got.description, "one");
      assert.equal(got.secret, false);
      assert.equal(got.updated_by, "dave");
      assert.equal(got.created_at, c.entry!.created_at);
      const h = await s.history(id, 1, 0);
      assert.equal(h[0].change_type, "rolled_back");
      assert.equal(h[0].version, 3);
      assert.equal(h[0].value, '{"v":1}');

      const seq = await s.maxSeq();
      await assert.rejects(rollback(s, id, 99), NotFoundError);
      await assert.rejects(rollback(s, eid("missing"), 1), NotFoundError);
      await del(s, id); // v4
      await assert.rejects(rollback(s, id, 4), NotFoundError, "a deleted row has no value");
      assert.equal(await s.get(id), null);
      assert.equal(await s.maxSeq(), seq + 1);

      const back = await rollback(s, id, 2); // v5: re-creates the entry
      assert.equal(back.change.type, "rolled_back");
      const again = await s.get(id);
      assert.ok(again);
      assert.equal(again.version, 5);
      assert.equal(again.value, '{"v":2}');
      assert.equal(again.secret, true);
      assert.equal(again.description, "two");
      assert.equal(again.created_at, again.updated_at);
      assert.deepEqual(
        (await s.history(id, 10, 0)).map((x) => [x.version, x.change_type]),
        [[5, "rolled_back"], [4, "deleted"], [3, "rolled_back"], [2, "updated"], [1, "created"]],
      );
    },
  );

  t("history is newest first and paginates with limit/offset", async (s) => {
    const id = eid("k", "api");
    await create(s, id, 1);
    for (let v = 2; v <= 5; v++) await update(s, id, v);
    await create(s, eid("k"), "other scope");
    const versions = async (limit: number, offset: number) =>
      (await s.history(id, limit, offset)).map((h) => h.version);
    assert.deepEqual(await versions(10, 0), [5, 4, 3, 2, 1]);
    assert.deepEqual(await versions(2, 0), [5, 4]);
    assert.deepEqual(await versions(2, 2), [3, 2]);
    assert.deepEqual(await versions(2, 4), [1]);
    assert.deepEqual(await versions(2, 10), []);
    const all = await s.history(id, 10, 0);
    assert.deepEqual(all.map((h) => h.value), ["5", "4", "3", "2", "1"]);
    assert.ok(all.every((h) => h.environment === "dev" && h.service === "api" && h.key === "k"));
    assert.deepEqual((await s.history(eid("k"), 10, 0)).map((h) => h.version), [1]);
    assert.deepEqual(await s.history(eid("none"), 10, 0), []);
  });

  const seedList = async (s: ConfigStore) => {
    // Written out of order on purpose; lowercase ASCII so every collation sorts alike.
    for (
      const id of [
        eid("b", "api", "prod"),
        eid("c", "web"),
        eid("a", "", "prod"),
        eid("b"),
        eid("a", "api"),
        eid("a"),
      ]
    ) await create(s, id, triple(id));
  };

  t(
    "list filters by environment, service, keys, paginates and orders by env/service/key",
    async (s) => {
      await seedList(s);
      const list = async (
        f: { environment?: string; service?: string; keys?: string[] },
        limit = 100,
        offset = 0,
      ) => triples(await s.list({ ...f, limit, offset }));
      const all = ["dev//a", "dev//b", "dev/api/a", "dev/web/c", "prod//a", "prod/api/b"];
      assert.deepEqual(await list({}), all);
      assert.deepEqual(await list({ environment: "dev" }), all.slice(0, 4));
      assert.deepEqual(await list({ environment: "prod" }), ["prod//a", "prod/api/b"]);
      assert.deepEqual(await list({ environment: "staging" }), []);
      assert.deepEqual(await list({ service: "" }), ["dev//a", "dev//b", "prod//a"]);
      assert.deepEqual(await list({ environment: "dev", service: "" }), ["dev//a", "dev//b"]);
      assert.deepEqual(await list({ service: "api" }), ["dev/api/a", "prod/api/b"]);
      assert.deepEqual(await list({ environment: "dev", service: "web" }), ["dev/web/c"]);
      assert.deepEqual(await list({ keys: ["a"] }), ["dev//a", "dev/api/a", "prod//a"]);
      assert.deepEqual(await list({ environment: "dev", keys: ["a", "c", "zz"] }), [
        "dev//a",
        "dev/api/a",
        "dev/web/c",
      ]);
      assert.deepEqual(await list({ environment: "prod", service: "api", keys: ["b"] }), [
        "prod/api/b",
      ]);
      assert.deepEqual(await list({}, 2, 0), all.slice(0, 2));
      assert.deepEqual(await list({}, 2, 2), all.slice(2, 4));
      assert.deepEqual(await list({}, 2, 4), all.slice(4, 6));
      assert.deepEqual(await list({}, 2, 6), []);
      assert.deepEqual(await list({ environment: "dev" }, 3, 1), all.slice(1, 4));
      const [first] = await s.list({ limit: 1, offset: 0 });
      assert.equal(first.value, '"dev//a"');
    },
  );

  t(
    "list by key prefix matches it literally and case-sensitively (_ and % are no wildcards)",
    async (s) => {
      const env = `px${crypto.randomUUID().slice(0, 8)}`;
      for (const key of ["a.b", "a.c", "a_b", "ab", "A.b", "b.a"]) {
        await create(
          s,
          eid(key, "", env),
          key,
        );
      }
      const keys = async (prefix: string) =>
        (await s.list({ environment: env, prefix, limit: 100, offset: 0 })).map((e) => e.key)
          .sort();
      assert.deepEqual(await keys("a."), ["a.b", "a.c"]);
      assert.deepEqual(await keys("a_"), ["a_b"]);
      assert.deepEqual(await keys("A"), ["A.b"]);
      assert.deepEqual(await keys("a"), ["a.b", "a.c", "a_b", "ab"]);
      assert.deepEqual(await keys("zz"), []);
    },
  );

  t("getMany returns only the named keys of one scope", async (s) => {
    await seedList(s);
    const many = async (env: string, svc: string, keys: string[]) =>
      triples(await s.getMany(env, svc, keys)).sort();
    assert.deepEqual(await many("dev", "", ["a", "b", "zz"]), ["dev//a", "dev//b"]);
    assert.deepEqual(await many("dev", "", ["a"]), ["dev//a"]);
    assert.deepEqual(await many("dev", "api", ["a", "b", "c"]), ["dev/api/a"]);
    assert.deepEqual(await many("prod", "", ["a", "b"]), ["prod//a"]);
    assert.deepEqual(await many("dev", "web", ["a"]), []);
    assert.deepEqual(await many("dev", "", []), []);
    const [e] = await s.getMany("dev", "api", ["a"]);
    assert.deepEqual(e, await s.get(eid("a", "api")));
  });

  t("changesSince orders by seq, filters by environment and service (+ global)", async (s) => {
    const w = [
      await create(s, eid("a"), 1), // 0 dev global
      await create(s, eid("a", "api"), 1), // 1 dev api
      await create(s, eid("c", "web"), 1), // 2 dev web
      await create(s, eid("a", "", "prod"), 1), // 3 prod global
      await create(s, eid("b", "api", "prod"), 1), // 4 prod api
      await update(s, eid("a"), "x"), // 5 dev global
    ].map((r) => r.change);
    const seqs = w.map((c) => c.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
    assert.equal(new Set(w.map((c) => c.event_id)).size, w.length);
    assert.equal(await s.maxSeq(), seqs[5]);

    const since = async (
      after: number,
      f: { environment?: string; service?: string },
      limit = 100,
    ) => (await s.changesSince(after, f, limit)).map((c) => c.seq);
    assert.deepEqual(await s.changesSince(0, {}, 100), w);
    assert.deepEqual(await since(seqs[1], {}), seqs.slice(2));
    assert.deepEqual(await since(0, {}, 2), seqs.slice(0, 2));
    assert.deepEqual(await since(seqs[5], {}), []);
    assert.deepEqual(await since(0, { environment: "dev" }), [seqs[0], seqs[1], seqs[2], seqs[5]]);
    assert.deepEqual(await since(0, { environment: "prod" }), [seqs[3], seqs[4]]);
    assert.deepEqual(await since(0, { environment: "dev", service: "api" }), [
      seqs[0],
      seqs[1],
      seqs[5],
    ]);
    assert.deepEqual(await since(0, { environment: "prod", service: "api" }), [seqs[3], seqs[4]]);
    assert.deepEqual(await since(0, { environment: "dev", service: "web" }), [
      seqs[0],
      seqs[2],
      seqs[5],
    ]);
    assert.deepEqual(await since(seqs[0], { environment: "dev", service: "nope" }), [seqs[5]]);
    assert.deepEqual(await since(0, { environment: "staging" }), []);
  });

  t(
    "outbox: unpublished oldest first, markPublished, backlog, prune keeps the newest",
    async (s) => {
      assert.equal(await s.backlog(), 0);
      assert.deepEqual(await s.unpublished(10), []);
      await s.markPublished([]);
      const c1 = (await create(s, eid("a"), 1)).change;
      const c2 = (await create(s, eid("b"), 2)).change;
      const c3 = (await create(s, eid("c"), 3)).change;
      assert.deepEqual(await s.unpublished(10), [c1, c2, c3]);
      assert.deepEqual((await s.unpublished(2)).map((c) => c.seq), [c1.seq, c2.seq]);
      assert.equal(await s.backlog(), 3);

      await s.markPublished([c1.seq]);
      assert.deepEqual((await s.unpublished(10)).map((c) => c.seq), [c2.seq, c3.seq]);
      assert.equal(await s.backlog(), 2);
      await s.markPublished([c1.seq]); // again: no effect
      assert.equal(await s.backlog(), 2);

      await sleep(5);
      const cutoff = new Date().toISOString();
      await sleep(5);
      const c4 = (await create(s, eid("d"), 4)).change;
      assert.ok(c4.updated_at > cutoff);
      assert.equal(await s.backlog(), 3);

      // Published and older than the cutoff: only c1.
      assert.equal(await s.prune(cutoff, false), 1);
      assert.deepEqual((await s.changesSince(0, {}, 10)).map((c) => c.seq), [
        c2.seq,
        c3.seq,
        c4.seq,
      ]);
      assert.equal(await s.backlog(), 3);
      // All older than the cutoff, published or not: c2, c3.
      assert.equal(await s.prune(cutoff, true), 2);
      assert.deepEqual((await s.changesSince(0, {}, 10)).map((c) => c.seq), [c4.seq]);
      assert.equal(await s.backlog(), 1);

      // The newest row stays even when everything is older than the cutoff.
      const future = "9999-12-31T23:59:59.999Z";
      assert.equal(await s.prune(future, true), 0);
      const c5 = (await create(s, eid("e"), 5)).change;
      await s.markPublished([c4.seq, c5.seq]);
      assert.equal(await s.backlog(), 0);
      assert.deepEqual(await s.unpublished(10), []);
      assert.equal(await s.prune(future, false), 1);
      assert.deepEqual((await s.changesSince(0, {}, 10)).map((c) => c.seq), [c5.seq]);
      assert.equal(await s.prune(future, false), 0);
      assert.equal(await s.prune(future, true), 0);
      assert.equal(await s.maxSeq(), c5.seq);
      const c6 = (await create(s, eid("f"), 6)).change;
      assert.ok(c6.seq > c5.seq, "the sequence does not restart after a prune");
      assert.deepEqual(await s.unpublished(10), [c6]);
    },
  );

  t("50 concurrent updates get versions 2..51 and seqs in commit order", async (s) => {
    const id = eid("counter", "api");
    await create(s, id, 0);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => update(s, id, i + 1, { by: `w${i}` })),
    );
    assert.deepEqual(
      results.map((r) => r.entry!.version).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 2),
    );
    assert.equal(new Set(results.map((r) => r.change.seq)).size, 50);
    const bySeq = [...results].sort((a, b) => a.change.seq - b.change.seq);
    assert.deepEqual(
      bySeq.map((r) => r.change.version),
      Array.from({ length: 50 }, (_, i) => i + 2),
      "a higher seq is a later version",
    );
    const changes = await s.changesSince(0, {}, 1000);
    assert.equal(changes.length, 51);
    assert.deepEqual(changes.map((c) => c.version), Array.from({ length: 51 }, (_, i) => i + 1));
    for (let i = 1; i < changes.length; i++) assert.ok(changes[i].seq > changes[i - 1].seq);
    const got = await s.get(id);
    assert.equal(got?.version, 51);
    assert.equal(got?.value, changes[50].value);
    assert.equal((await s.history(id, 100, 0)).length, 51);
  });

  t("20 concurrent creates of one id: exactly one succeeds, the rest conflict", async (s) => {
    const id = eid("race");
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => create(s, id, i, { by: `w${i}` })),
    );
    const ok = settled.filter((r) => r.status === "fulfilled");
    const failed = settled.filter((r) => r.status === "rejected");
    assert.equal(ok.length, 1);
    assert.equal(failed.length, 19);
    for (const f of failed) {
      const reason = (f as PromiseRejectedResult).reason;
      assert.ok(reason instanceof ConflictError, `expected ConflictError, got ${reason}`);
    }
    const winner = (ok[0] as PromiseFulfilledResult<WriteResult>).value;
    const got = await s.get(id);
    assert.deepEqual(got, winner.entry);
    assert.equal(got?.version, 1);
    assert.equal((await s.history(id, 100, 0)).length, 1);
    assert.deepEqual(await s.changesSince(0, {}, 100), [winner.change]);
  });

  t("values of every JSON type round-trip through the stored text", async (s) => {
    const big = "x".repeat(150 * 1024) + "é✓".repeat(25 * 1024); // 200 KiB of UTF-16 units
    const values: Record<string, unknown> = {
      string: "hello",
      empty: "",
      escapes: 'quote " backslash \\ newline \n tab \t nul \u0000',
      integer: 42,
      negative: -7,
      float: 3.25,
      tiny: 1e-7,
      maxsafe: Number.MAX_SAFE_INTEGER,
      true: true,
      false: false,
      null: null,
      array: [1, "two", null, [true, { three: 3 }], []],
      object: { b: 1, a: { nested: [1, 2, { deep: "yes" }] }, empty: {} },
      unicode: "héllo wörld ✓ 日本語 🚀 Ω",
      unicodeKeys: { "ключ": "значение", "🔑": ["🚀"] },
      big,
    };
    for (const [key, v] of Object.entries(values)) await create(s, eid(key, "api"), v);
    for (const [key, v] of Object.entries(values)) {
      const got = await s.get(eid(key, "api"));
      assert.ok(got, key);
      assert.equal(got.value, JSON.stringify(v), key);
      assert.deepEqual(JSON.parse(got.value), v, key);
    }
    assert.equal(
      JSON.parse((await s.get(eid("big", "api")))!.value).length,
      200 * 1024,
    );
    const listed = await s.list({ environment: "dev", service: "api", limit: 100, offset: 0 });
    assert.equal(listed.length, Object.keys(values).length);
    for (const e of listed as StoredEntry[]) {
      assert.deepEqual(JSON.parse(e.value), values[e.key], e.key);
    }
    const changes = await s.changesSince(0, {}, 100);
    for (const c of changes) assert.deepEqual(JSON.parse(c.value!), values[c.key], c.key);
    const [h] = await s.history(eid("unicodeKeys", "api"), 1, 0);
    assert.deepEqual(JSON.parse(h.value!), values.unicodeKeys);
  });
}

// --- SQLite: a fresh database file in a temp dir per case ---------------------------------

contract("sqlite", async () => {
  const dir = tempDir("cs-store-test-");
  const store = new SqliteConfigStore(openSqlite(dir));
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

// --- PostgreSQL: a fresh schema per case, chosen through the URL's search_path -------------

/** npm:postgres sends unknown URL query parameters as connection (startup) parameters. */
function withSearchPath(url: string, schema: string): string {
  return url + (url.includes("?") ? "&" : "?") + `search_path=${encodeURIComponent(schema)}`;
}

contract(
  "postgres",
  async () => {
    const url = Deno.env.get("TEST_DATABASE_URL") || Deno.env.get("DATABASE_URL")!;
    const schema = `cs_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const admin = createPostgres(url, { max: 1 });
    await admin.unsafe(`CREATE SCHEMA "${schema}"`);
    const sql = createPostgres(withSearchPath(url, schema), { max: 10 });
    const store = new PostgresConfigStore(sql);
    const cleanup = async () => {
      try {
        await store.close();
      } finally {
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end({ timeout: 5 });
      }
    };
    try {
      const [{ s }] = await sql`SELECT current_schema() AS s`;
      assert.equal(s, schema, "search_path from the URL reaches the server");
      await store.migrate();
      const tables = await admin`SELECT table_name FROM information_schema.tables
        WHERE table_schema = ${schema} ORDER BY table_name`;
      assert.deepEqual(tables.map((r) => r.table_name), [
        "config_changes",
        "config_entries",
        "config_history",
        "schema_migrations",
      ]);
    } catch (err) {
      await cleanup();
      throw err;
    }
    return { store, cleanup };
  },
  (caseName, fn) => serverTest("postgres", ["DATABASE_URL"], `store: ${caseName}`, fn),
);
