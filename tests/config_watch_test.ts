/**
 * The SSE watch stream's lifecycle against a client that hangs up: over a stub ConfigClient
 * whose replay answer the test releases, so the hang-up lands exactly during the replay.
 */
import assert from "node:assert/strict";
import { configRoutes } from "../routes/config.ts";
import { WatchHub } from "../lib/config/watch_hub.ts";
import type { ConfigClient } from "../actors/config_client.ts";
import type { ChangeView } from "../lib/config/model.ts";
import { embeddedSettings, sleep } from "./_helpers.ts";

Deno.test("a watch whose client hangs up during the Last-Event-ID replay starts no heartbeat", async () => {
  const { promise: replayed, resolve: release } = Promise.withResolvers<ChangeView[]>();
  let asked = 0;
  const config = {
    changeIndex: 0,
    changes: () => {
      asked++;
      return replayed;
    },
  } as unknown as ConfigClient;
  // Intervals started and not cleared during the test (the stream's heartbeat is one).
  const live = new Set<ReturnType<typeof setInterval>>();
  const { setInterval: realSet, clearInterval: realClear } = globalThis;
  globalThis.setInterval = ((fn: () => void, ms?: number) => {
    const id = realSet(fn, ms);
    live.add(id);
    return id;
  }) as typeof setInterval;
  globalThis.clearInterval = ((id?: ReturnType<typeof setInterval>) => {
    if (id !== undefined) live.delete(id);
    realClear(id);
  }) as typeof clearInterval;
  const hub = new WatchHub();
  const app = configRoutes({ settings: embeddedSettings(), config, hub, getMemo: new Map() });
  const res = await app.request("/api/v1/config/watch?environment=development", {
    headers: { "Last-Event-ID": "5" },
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // the "connected" frame
  while (asked === 0) await sleep(1);
  await reader.cancel();
  release([]);
  await sleep(10);
  try {
    // Left running, its first heartbeat would enqueue on the cancelled stream and throw.
    assert.equal(live.size, 0, "the hung-up watch left its heartbeat interval running");
  } finally {
    globalThis.setInterval = realSet;
    globalThis.clearInterval = realClear;
    for (const id of live) realClear(id);
    hub.close();
  }
});
