/**
 * SSE fan-out: N watchers on one service, one change at a time; measures the delay from the
 * write's acknowledgement to each watcher receiving the event. Watchers are raw TCP
 * connections so the client side costs little.
 */
import { post, rssMiB, spawnService } from "./service.ts";

async function watcher(port: number, onSeq: (seq: number) => void, ready: () => void) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    "GET /api/v1/config/watch?environment=development HTTP/1.1\r\nHost: x\r\n" +
      "Accept: text/event-stream\r\n\r\n",
  ));
  const dec = new TextDecoder();
  let buf = "";
  let isReady = false;
  const chunk = new Uint8Array(64 * 1024);
  return {
    conn,
    done: (async () => {
      while (true) {
        let n: number | null;
        try {
          n = await conn.read(chunk);
        } catch {
          return;
        }
        if (n === null) return;
        buf += dec.decode(chunk.subarray(0, n), { stream: true });
        if (!isReady && buf.includes(": connected")) {
          isReady = true;
          ready();
        }
        let i;
        while ((i = buf.indexOf("\nid: ")) >= 0) {
          const end = buf.indexOf("\n", i + 5);
          if (end < 0) break;
          onSeq(Number(buf.slice(i + 5, end)));
          buf = buf.slice(end);
        }
        if (buf.length > 4096) buf = buf.slice(-4096);
      }
    })(),
  };
}

/** Returns a Markdown line with p50/p99/max delivery delay over `changes` × `n` deliveries. */
export async function sseFanout(n: number, changes: number): Promise<string> {
  const svc = await spawnService();
  const delays: number[] = [];
  const pending = new Map<number, { at: number; left: number }>();
  let readyCount = 0;
  const allReady = Promise.withResolvers<void>();
  const watchers = [];
  try {
    for (let i = 0; i < n; i++) {
      watchers.push(
        await watcher(svc.port, (seq) => {
          const p = pending.get(seq);
          if (!p) return;
          delays.push(performance.now() - p.at);
          if (--p.left === 0) pending.delete(seq);
        }, () => {
          if (++readyCount === n) allReady.resolve();
        }),
      );
    }
    await allReady.promise;
    const rssWatching = rssMiB(svc.child.pid);
    for (let c = 0; c < changes; c++) {
      // A fresh store numbers changes 1, 2, …; deliveries can beat the write's own
      // response, so they are counted from the request's start.
      const seq = c + 1;
      pending.set(seq, { at: performance.now(), left: n });
      await post(`${svc.url}/api/v1/config`, {
        key: `fanout-${c}`,
        value: c,
        environment: "development",
      });
      const end = Date.now() + 5_000;
      while (pending.has(seq) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      pending.delete(seq);
    }
    delays.sort((a, b) => a - b);
    const q = (p: number) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))];
    const expected = n * changes;
    return `- SSE fan-out, ${n} watchers × ${changes} changes: ${delays.length}/${expected} ` +
      `deliveries, p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ` +
      `${delays.at(-1)?.toFixed(1)} ms (from the write request to the event); service RSS ` +
      `with ${n} watchers ${rssWatching.toFixed(0)} MiB`;
  } finally {
    for (const w of watchers) {
      try {
        w.conn.close();
      } catch { /* closed */ }
    }
    await svc.stop();
  }
}

if (import.meta.main) console.log(await sseFanout(Number(Deno.args[0] ?? 2000), 20));
