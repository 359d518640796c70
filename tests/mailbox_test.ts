import assert from "node:assert/strict";
import { Mailbox } from "../actors/mailbox.ts";
import { coalesce } from "../lib/async.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("Mailbox.run() runs work of one entity one at a time, in order", async () => {
  const box = new Mailbox();
  const seen: string[] = [];
  const job = (name: string, turns: number) => async () => {
    seen.push(`${name}:start`);
    for (let i = 0; i < turns; i++) await tick();
    seen.push(`${name}:end`);
    return name;
  };
  const out = await Promise.all([
    box.run("a", job("1", 3)),
    box.run("a", job("2", 1)),
    box.run("a", job("3", 0)),
  ]);
  assert.deepEqual(out, ["1", "2", "3"]);
  assert.deepEqual(seen, ["1:start", "1:end", "2:start", "2:end", "3:start", "3:end"]);
  assert.equal(box.busy, 0);
});

Deno.test("Mailbox.run() lets other entities run alongside", async () => {
  const box = new Mailbox();
  const seen: string[] = [];
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  const slow = box.run("a", async () => {
    seen.push("a:start");
    await gate;
    seen.push("a:end");
  });
  await box.run("b", () => seen.push("b"));
  assert.deepEqual(seen, ["a:start", "b"]);
  open();
  await slow;
  assert.deepEqual(seen, ["a:start", "b", "a:end"]);
});

Deno.test("Mailbox.run() keeps going after a job throws, and rejects that job's promise", async () => {
  const box = new Mailbox();
  const first = box.run("a", () => {
    throw new Error("boom");
  });
  const second = box.run("a", () => "ok");
  await assert.rejects(first, /boom/);
  assert.equal(await second, "ok");
});

Deno.test("Mailbox.run() runs at once when the entity is idle", () => {
  const box = new Mailbox();
  let ran = false;
  void box.run("a", () => ran = true);
  assert.equal(ran, true);
});

Deno.test("coalesce() never overlaps runs and a call during a run gets a later run", async () => {
  let running = 0;
  let runs = 0;
  let overlapped = false;
  const run = coalesce(async () => {
    running++;
    if (running > 1) overlapped = true;
    const n = ++runs;
    await tick();
    running--;
    return n;
  });
  const first = run();
  const during = [run(), run(), run()];
  assert.equal(await first, 1);
  assert.deepEqual(await Promise.all(during), [2, 2, 2]);
  assert.equal(overlapped, false);
  assert.equal(runs, 2);
  assert.equal(await run(), 3);
});
