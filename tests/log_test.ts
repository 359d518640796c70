/**
 * The log writer (lib/log_writer.ts) batches lines off the request path, keeps them in order,
 * drops and counts lines past its bound, and loses nothing at a clean exit; the service
 * reports its dropped lines in /metrics and writes its request lines before it stops.
 */
import assert from "node:assert/strict";
import { LogWriter, type LogWriterOptions } from "../lib/log_writer.ts";
import { spawnService } from "./_process.ts";

const decoder = new TextDecoder();

/** A stream that records each write; `gate` (when set) holds every write until released. */
function fakeStream(opts: { chunk?: number } = {}) {
  const writes: string[] = [];
  let gate: PromiseWithResolvers<void> | null = null;
  return {
    writes,
    text: () => writes.join(""),
    hold() {
      gate = Promise.withResolvers<void>();
    },
    release() {
      gate?.resolve();
      gate = null;
    },
    async write(p: Uint8Array): Promise<number> {
      // Copied at once: the writer may reuse nothing, but a held write must see its bytes.
      const n = Math.min(p.length, opts.chunk ?? p.length);
      const text = decoder.decode(p.subarray(0, n));
      if (gate) await gate.promise;
      writes.push(text);
      return n;
    },
    writeSync(p: Uint8Array): number {
      writes.push(decoder.decode(p));
      return p.length;
    },
  };
}

function writer(
  s: ReturnType<typeof fakeStream>,
  extra: Partial<LogWriterOptions> = {},
): LogWriter {
  return new LogWriter({
    write: (p) => s.write(p),
    writeSync: (p) => s.writeSync(p),
    droppedLine: (n) => `dropped ${n}`,
    ...extra,
  });
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("LogWriter writes every line in order, complete, in few writes", async () => {
  const s = fakeStream();
  const w = writer(s);
  const lines = Array.from({ length: 5000 }, (_, i) => `{"i":${i},"pad":"${"é".repeat(i % 7)}"}`);
  for (let i = 0; i < lines.length; i++) {
    w.append(lines[i]);
    if (i % 500 === 0) await tick();
  }
  await w.flush();
  assert.equal(s.text(), lines.join("\n") + "\n");
  assert.ok(s.writes.length <= 20, `${s.writes.length} writes for 5000 lines`);
  assert.equal(w.dropped, 0);
  assert.equal(w.pending, 0);
});

Deno.test("LogWriter finishes partial writes before the next batch", async () => {
  const s = fakeStream({ chunk: 7 });
  const w = writer(s);
  const lines = Array.from({ length: 300 }, (_, i) => `line ${i}`);
  for (const l of lines) w.append(l);
  await w.flush();
  assert.equal(s.text(), lines.join("\n") + "\n");
});

Deno.test("LogWriter holds ordinary lines for delayMs, then writes them together", async () => {
  const s = fakeStream();
  const w = writer(s, { delayMs: 30 });
  w.append("a");
  await tick();
  w.append("b");
  await tick();
  assert.equal(s.writes.length, 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(s.writes, ["a\nb\n"]);
});

Deno.test("LogWriter batches lines logged during a write instead of writing each at once", async () => {
  const s = fakeStream();
  const w = writer(s, { delayMs: 30 });
  s.hold();
  w.append("a", true);
  w.append("b");
  w.append("c");
  s.release();
  await tick();
  assert.deepEqual(s.writes, ["a\n"]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(s.writes, ["a\n", "b\nc\n"]);
});

Deno.test("LogWriter starts the write of an urgent (lifecycle) line at once", () => {
  const s = fakeStream();
  const w = writer(s);
  w.append("before");
  w.append("listening", true);
  // The fake stream records synchronously: no task, timer or microtask has run yet.
  assert.deepEqual(s.writes, ["before\nlistening\n"]);
});

Deno.test("LogWriter drops and counts lines past its bound, then reports them", async () => {
  const s = fakeStream();
  let counted = 0;
  const max = 16 * 1024;
  const w = writer(s, { maxPendingBytes: max, batchBytes: 1024, onDrop: () => counted++ });
  s.hold();
  const line = (i: number) => `${String(i).padStart(6, "0")} ${"x".repeat(90)}`;
  const accepted: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    if (w.append(line(i))) accepted.push(line(i));
    assert.ok(w.pending <= max, `pending ${w.pending} past the bound ${max}`);
  }
  assert.ok(accepted.length < 200, `${accepted.length} lines held with a stalled stream`);
  assert.equal(w.dropped, 20_000 - accepted.length);
  assert.equal(counted, w.dropped);
  s.release();
  await w.flush();
  assert.equal(s.text(), [...accepted, `dropped ${w.dropped}`].join("\n") + "\n");
  // Reported once: later lines go out without another report.
  w.append("after");
  await w.flush();
  assert.ok(s.text().endsWith(`dropped ${w.dropped}\nafter\n`));
});

Deno.test("LogWriter stops writing to a stream that failed and counts what it lost", async () => {
  let calls = 0;
  const w = new LogWriter({
    write: () => {
      calls++;
      return Promise.reject(new Error("Broken pipe"));
    },
    writeSync: () => {
      throw new Error("Broken pipe");
    },
    droppedLine: (n) => `dropped ${n}`,
  });
  w.append("a");
  w.append("b", true);
  await w.flush();
  w.append("c");
  await w.flush();
  w.flushSync();
  assert.equal(calls, 1);
  assert.equal(w.dropped, 3);
});

Deno.test("flushSync writes what is buffered, the dropped report included", () => {
  const s = fakeStream();
  const w = writer(s, { maxPendingBytes: 4 });
  w.append("ok");
  w.append("too long");
  w.flushSync();
  assert.deepEqual(s.writes, ["ok\ndropped 1\n"]);
});

async function runFixture(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./fixtures/log_flood.ts", import.meta.url).pathname, ...args],
    env: { LOG_LEVEL: "INFO" },
    stdin: "null",
  }).output();
  return {
    code: out.code,
    lines: decoder.decode(out.stdout).split("\n").filter(Boolean).map((l) => JSON.parse(l)),
    stderr: decoder.decode(out.stderr),
  };
}

Deno.test("log lines written just before Deno.exit() are all on stdout", async () => {
  const { code, lines } = await runFixture(["exit", "20000", "0"]);
  assert.equal(code, 0);
  assert.equal(lines.length, 20_001);
  lines.slice(0, -1).forEach((l, i) => assert.equal(l.i, i));
  assert.deepEqual(Object.keys(lines[0]), ["ts", "level", "msg", "i", "pad"]);
  assert.equal(lines.at(-1).msg, "last words");
});

Deno.test("a log flood past 4 MiB in one turn drops lines and reports the count", async () => {
  // 20,000 lines of ~1 KiB (20 MiB) appended before any write can finish.
  const { code, lines, stderr } = await runFixture(["flood", "20000", "1000"]);
  assert.equal(code, 0);
  const dropped = Number(stderr.trim());
  assert.ok(dropped > 10_000, `dropped ${dropped}`);
  const kept = lines.filter((l) => l.msg === "line");
  assert.equal(kept.length + dropped, 20_000);
  kept.forEach((l, i) => assert.equal(l.i, i));
  const report = lines.filter((l) => l.msg === "log lines dropped");
  assert.equal(report.length, 1);
  assert.equal(report[0].level, "warn");
  assert.equal(report[0].dropped, dropped);
});

Deno.test("the service writes every request line before it stops on SIGTERM", async () => {
  const svc = await spawnService({});
  const ids: string[] = [];
  let metrics = "";
  try {
    for (let i = 0; i < 50; i++) {
      const id = `log-test-${i}`;
      ids.push(id);
      const r = await fetch(`${svc.url}/live`, { headers: { "x-request-id": id } });
      await r.body?.cancel();
    }
    const m = await fetch(`${svc.url}/metrics`);
    metrics = await m.text();
  } finally {
    svc.kill("SIGTERM");
    assert.equal((await svc.status).code, 0);
    await svc.drained;
  }
  assert.match(metrics, /^log_lines_dropped_total 0$/m);
  const parsed = svc.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const logged = parsed.filter((l) => l.msg === "request").map((l) => l.request_id);
  for (const id of ids) assert.ok(logged.includes(id), `no request line for ${id}`);
  const keys = Object.keys(parsed.find((l) => l.request_id === ids[0]));
  assert.deepEqual(keys, [
    "ts",
    "level",
    "msg",
    "method",
    "route",
    "path",
    "status",
    "ms",
    "request_id",
  ]);
  assert.equal(parsed.at(-1)?.msg, "stopped");
});
