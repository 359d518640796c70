import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "./_helpers.ts";
import { EntryCache, type Slot, slotOf } from "../lib/config/cache.ts";
import { ConfigSnapshot, type SnapshotSource } from "../lib/config/snapshot.ts";
import { idKey, MASK, type StoredEntry } from "../lib/config/model.ts";

function entry(key: string, value: unknown, over: Partial<StoredEntry> = {}): StoredEntry {
  return {
    environment: "development",
    service: "",
    key,
    value: JSON.stringify(value),
    secret: false,
    description: null,
    version: 1,
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:00:00.000Z",
    updated_by: "test",
    ...over,
  } as StoredEntry;
}

/** A source over a plain map, as the actor's cache would be. */
class MapSource implements SnapshotSource {
  changes = 0;
  readonly map = new Map<string, Slot>();
  set(e: StoredEntry | null, key = e ? idKey(e) : ""): void {
    this.map.set(key, slotOf(e));
    this.changes++;
  }
  entries() {
    return this.map.entries();
  }
}

Deno.test("ConfigSnapshot.load() of a missing file is an empty snapshot", async () => {
  const snap = new ConfigSnapshot({ dir: tempDir(), namespace: "ns" });
  assert.equal(await snap.load(), 0);
  assert.equal(snap.size, 0);
});

Deno.test("ConfigSnapshot round-trips the cached slots through its file", async () => {
  const dir = tempDir();
  const src = new MapSource();
  const a = entry("a", { url: "/x" }, { version: 3 });
  src.set(a);
  src.set(entry("b", 2));
  const snap = new ConfigSnapshot({ dir, namespace: "ns" });
  await snap.sync(src);
  assert.equal(snap.path, join(dir, "config-snapshot-ns.json"));

  const again = new ConfigSnapshot({ dir, namespace: "ns" });
  assert.equal(await again.load(), 2);
  assert.deepEqual(again.get(idKey(a)), slotOf(a));
  // Another store's snapshot is another file.
  assert.equal(await new ConfigSnapshot({ dir, namespace: "other" }).load(), 0);
});

Deno.test("ConfigSnapshot never writes a secret's value, clear or encrypted", async () => {
  const dir = tempDir();
  const src = new MapSource();
  src.set(entry("db.password", "v1:ciphertext-of-hunter2", { secret: true }));
  const snap = new ConfigSnapshot({ dir, namespace: "ns" });
  await snap.sync(src);
  const text = await Deno.readTextFile(snap.path);
  assert.ok(!text.includes("ciphertext-of-hunter2"), text);
  const loaded = new ConfigSnapshot({ dir, namespace: "ns" });
  await loaded.load();
  const slot = loaded.get(idKey(entry("db.password", null)))!;
  assert.equal(slot.value, JSON.stringify(MASK));
  assert.equal(JSON.parse(slot.body!).value, MASK);
});

Deno.test("ConfigSnapshot keeps entries the cache evicted, and known absences", () => {
  const src = new MapSource();
  const snap = new ConfigSnapshot({ dir: tempDir(), namespace: "ns" });
  const a = entry("a", 1);
  const b = entry("b", 2);
  src.set(a);
  src.set(b);
  snap.merge(src);
  src.map.delete(idKey(a)); // evicted from the cache: still last known good
  src.set(null, idKey(b)); // deleted since: known absent
  assert.equal(snap.merge(src), true);
  assert.ok(snap.get(idKey(a))?.body);
  assert.equal(snap.get(idKey(b))?.body, null);
});

Deno.test("ConfigSnapshot.merge() skips an unchanged source and save() writes only changes", async () => {
  const src = new MapSource();
  src.set(entry("a", 1));
  const snap = new ConfigSnapshot({ dir: tempDir(), namespace: "ns" });
  await snap.sync(src);
  const first = (await Deno.stat(snap.path)).mtime!.getTime();
  assert.equal(snap.merge(src), false, "same change count: not even read");
  src.changes++;
  assert.equal(snap.merge(src), false, "same slots: nothing changed");
  await Deno.remove(snap.path);
  await snap.save();
  await assert.rejects(Deno.stat(snap.path), Deno.errors.NotFound);
  src.set(entry("a", 2, { version: 2 }));
  await snap.sync(src);
  assert.ok((await Deno.stat(snap.path)).mtime!.getTime() >= first);
});

Deno.test("ConfigSnapshot bounds entries and bytes, keeping the most recently cached", async () => {
  const dir = tempDir();
  const src = new MapSource();
  for (let i = 0; i < 50; i++) src.set(entry(`k${i}`, "x".repeat(100)));
  const byCount = new ConfigSnapshot({ dir, namespace: "count", maxEntries: 10 });
  await byCount.sync(src);
  assert.equal(byCount.size, 10);
  assert.ok(byCount.get(idKey(entry("k49", null))));
  assert.equal(byCount.get(idKey(entry("k0", null))), undefined);

  const bySize = new ConfigSnapshot({ dir, namespace: "bytes", maxBytes: 4_000 });
  await bySize.sync(src);
  assert.ok((await Deno.stat(bySize.path)).size <= 4_000);
  const loaded = new ConfigSnapshot({ dir, namespace: "bytes" });
  const n = await loaded.load();
  assert.ok(n > 0 && n < 50, `${n} entries`);
  assert.ok(loaded.get(idKey(entry("k49", null))), "the newest survives the byte bound");
});

Deno.test("ConfigSnapshot ignores a corrupt file and replaces it on the next save", async () => {
  const dir = tempDir();
  const snap = new ConfigSnapshot({ dir, namespace: "ns" });
  await Deno.writeTextFile(snap.path, '{"format":1,"entries":[["half"');
  assert.equal(await snap.load(), 0);
  await Deno.writeTextFile(snap.path, '{"format":99,"entries":[]}');
  assert.equal(await snap.load(), 0);
  const src = new MapSource();
  src.set(entry("a", 1));
  await snap.sync(src);
  assert.equal(await new ConfigSnapshot({ dir, namespace: "ns" }).load(), 1);
});

Deno.test("ConfigSnapshot writes atomically: no temporary file is left behind", async () => {
  const dir = tempDir();
  const src = new MapSource();
  const snap = new ConfigSnapshot({ dir, namespace: "ns" });
  for (let i = 0; i < 5; i++) {
    src.set(entry(`k${i}`, i));
    await Promise.all([snap.sync(src), snap.save()]);
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.deepEqual(names, ["config-snapshot-ns.json"]);
});

Deno.test("ConfigSnapshot takes in an EntryCache", async () => {
  // The actor's cache is the source: the slots it caches are what the snapshot keeps.
  const cache = new EntryCache(10);
  const e = entry("a", 1);
  cache.set(idKey(e), slotOf(e));
  const snap = new ConfigSnapshot({ dir: tempDir(), namespace: "ns" });
  await snap.sync(cache);
  assert.equal(snap.size, 1);
  assert.equal(snap.merge(cache), false, "unchanged cache: nothing to take in");
  cache.set(idKey(e), slotOf({ ...e, version: 2 }));
  assert.equal(snap.merge(cache), true);
  assert.equal(snap.get(idKey(e))?.version, 2);
});
