/**
 * Flag evaluation on the HTTP thread over the snapshots the FlagActor publishes: a change of
 * definitions reaches it, CACHED/STALE follow the snapshot's freshness (by time, as in the
 * actor), counts reach the actor within a second, and a restarted worker publishes again.
 */
import assert from "node:assert/strict";
import { FlagClient, USAGE_HANDOFF_MS } from "../actors/flags_client.ts";
import type { FlagsEvent } from "../actors/flags_protocol.ts";
import type { Collected } from "../lib/metrics.ts";
import { flagEnvironments } from "../lib/flags/api.ts";
import { EvaluationCounts } from "../lib/flags/counts.ts";
import { FlagEvaluator } from "../lib/flags/evaluate.ts";
import { type FlagSnapshot, freshnessOf, SnapshotView } from "../lib/flags/snapshot.ts";
import { embeddedSettings, send, startService, tempFile, waitFor } from "./_helpers.ts";

const DEV = "development";
const EVALUATE = "/api/v1/feature-flags/evaluate";

function doc(...flags: { name: string; enabled: boolean }[]) {
  return {
    version: 2,
    features: flags.map((f) => ({ ...f, strategies: [{ name: "default" }] })),
    segments: [],
  };
}

function flagsFile(...flags: { name: string; enabled: boolean }[]): string {
  const path = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(path, JSON.stringify(doc(...flags)));
  return path;
}

/** A view over one Unleash environment whose definitions have `facts`. */
function unleashView(facts: Pick<FlagSnapshot["environments"][0], "synced_at" | "confirmed_at">) {
  const view = new SnapshotView({
    environments: [DEV],
    defaultEnvironment: DEV,
    sourceKind: "unleash",
  });
  view.apply({
    source: "unleash",
    stale_ms: 200,
    auto_sync: true,
    environments: [{
      environment: DEV,
      hash: "h1",
      doc: JSON.stringify(doc({ name: "on", enabled: true })),
      ...facts,
    }],
  });
  return view;
}

function reasonOf(view: SnapshotView, fallback = true): { reason: string; error_code?: string } {
  const e = new FlagEvaluator(view, { fallback });
  return JSON.parse(e.evaluate("boolean", JSON.stringify({ flag_name: "on" })));
}

Deno.test("HTTP-thread evaluation answers CACHED for definitions never confirmed in this process, then STALE by time", async () => {
  const view = unleashView({ synced_at: new Date().toISOString(), confirmed_at: null });
  assert.equal(reasonOf(view).reason, "CACHED");
  // No message arrives: the HTTP thread derives the staleness from the time alone.
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(reasonOf(view).reason, "STALE");
  const old = unleashView({
    synced_at: new Date(Date.now() - 1_000).toISOString(),
    confirmed_at: null,
  });
  assert.equal(reasonOf(old).reason, "STALE");
  // Without fallback, definitions that are not live are not evaluated at all.
  assert.deepEqual(
    [reasonOf(old, false).reason, reasonOf(old, false).error_code],
    ["ERROR", "PROVIDER_NOT_READY"],
  );
});

Deno.test("HTTP-thread evaluation turns STALE when the source's confirmation ages, and live again on a new one", async () => {
  const view = unleashView({ synced_at: new Date().toISOString(), confirmed_at: Date.now() });
  assert.equal(reasonOf(view).reason, "STATIC");
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(reasonOf(view).reason, "STALE");
  // A confirmation carries no document: the definitions held are kept (same hash).
  view.apply({
    source: "unleash",
    stale_ms: 200,
    auto_sync: true,
    environments: [{
      environment: DEV,
      hash: "h1",
      synced_at: new Date().toISOString(),
      confirmed_at: Date.now(),
    }],
  });
  assert.equal(reasonOf(view).reason, "STATIC");
});

Deno.test("freshnessOf() keeps file definitions live and confirmed ones live without auto sync", () => {
  const long = { synced_at: "2000-01-01T00:00:00.000Z", confirmed_at: 0 };
  assert.equal(freshnessOf(long, { source: "file", stale_ms: 1, auto_sync: true }), "live");
  assert.equal(freshnessOf(long, { source: "unleash", stale_ms: 1, auto_sync: false }), "live");
  assert.equal(freshnessOf(long, { source: "unleash", stale_ms: 1, auto_sync: true }), "stale");
  assert.equal(
    freshnessOf({ ...long, confirmed_at: null }, {
      source: "unleash",
      stale_ms: 1,
      auto_sync: false,
    }),
    "stale",
  );
});

Deno.test("SnapshotView ignores a confirmation of definitions it does not hold, and an unknown environment", () => {
  const view = new SnapshotView({
    environments: [DEV],
    defaultEnvironment: DEV,
    sourceKind: "file",
  });
  view.apply({
    source: "file",
    stale_ms: 0,
    auto_sync: true,
    environments: [
      { environment: DEV, hash: "x", synced_at: new Date().toISOString(), confirmed_at: 1 },
      {
        environment: "elsewhere",
        hash: "y",
        doc: JSON.stringify(doc()),
        synced_at: new Date().toISOString(),
        confirmed_at: 1,
      },
    ],
  });
  assert.equal(view.size, 0);
  assert.equal(view.definitions(DEV), undefined);
});

Deno.test("EvaluationCounts hands what one thread counted to another: reasons and usage add up", () => {
  let counted = 0;
  const http = new EvaluationCounts({ usage: true, onCounted: () => counted++ });
  const actor = new EvaluationCounts({ usage: true });
  const e = (enabled: boolean, variant?: string) => ({
    found: true,
    enabled,
    reason: "STATIC",
    variant: { name: variant ?? "disabled", enabled: variant !== undefined },
  });
  http.reason("STATIC");
  http.reason("STATIC");
  http.usage(DEV, "f", e(true, "blue") as never);
  http.usage(DEV, "f", e(false) as never);
  assert.equal(counted, 1, "called once per period, at its first count");
  actor.reason("STATIC");
  actor.add(http.take()!);
  assert.equal(http.take(), null, "nothing counted since");
  http.reason("ERROR");
  assert.equal(counted, 2);
  actor.add(http.take()!);
  assert.deepEqual(Object.fromEntries(actor.reasons), { STATIC: 3, ERROR: 1 });
  const usage = actor.takeUsage();
  assert.deepEqual(Object.fromEntries(usage.toggles), {
    [DEV]: { f: { yes: 1, no: 1, variants: { blue: 1 } } },
  });
  // An actor that reports no usage keeps the reasons only.
  const quiet = new EvaluationCounts({ usage: false });
  quiet.add({ reasons: { STATIC: 1 }, toggles: { [DEV]: { f: { yes: 1, no: 0, variants: {} } } } });
  assert.equal(quiet.takeUsage().toggles.size, 0);
});

Deno.test("a change of the flags file reaches evaluation on the HTTP thread after the next poll, without an actor call", async () => {
  const path = flagsFile({ name: "dark-mode", enabled: true });
  await using svc = await startService(embeddedSettings({ FLAGS_FILE: path }));
  const client = svc.actors.flags;
  const evaluate = async (flag: string) =>
    await (await send(svc.app, "POST", EVALUATE, { flag_name: flag, environment: DEV })).json();
  await waitFor(async () => (await evaluate("dark-mode")).value === true, 10_000, "the file");

  const calls: string[] = [];
  const call = client.call.bind(client) as (...a: unknown[]) => Promise<unknown>;
  (client as { call: unknown }).call = (msg: { type: string }, ...rest: unknown[]) => {
    calls.push(msg.type);
    return call(msg, ...rest);
  };
  Deno.writeTextFileSync(
    path,
    JSON.stringify(doc({ name: "dark-mode", enabled: false }, { name: "beta", enabled: true })),
  );
  await waitFor(
    async () => (await evaluate("dark-mode")).reason === "DISABLED",
    10_000,
    "the change",
  );
  assert.deepEqual(await evaluate("beta"), {
    flag_name: "beta",
    value: true,
    reason: "STATIC",
    variant: "enabled",
    environment: DEV,
  });
  const list = await (await svc.app.request(`/api/v1/feature-flags?environment=${DEV}`)).json();
  assert.deepEqual(list.map((f: { name: string }) => f.name).sort(), ["beta", "dark-mode"]);
  const one = await svc.app.request(`/api/v1/feature-flags/beta?environment=${DEV}`);
  assert.equal((await one.json()).enabled, true);
  const missing = await svc.app.request(`/api/v1/feature-flags/nope?environment=${DEV}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "application/problem+json");
  await missing.body?.cancel();
  const ofrep = await send(svc.app, "POST", "/ofrep/v1/evaluate/flags/beta", { context: {} });
  assert.equal((await ofrep.json()).value, true);
  assert.deepEqual(
    calls.filter((t) => t !== "usage"),
    [],
    "no FlagActor call but the usage handoff",
  );
});

/** The actor's `flag_evaluations_total` samples by reason, asked directly (no flush). */
async function actorReasons(client: FlagClient): Promise<Record<string, number>> {
  const families = await client.call({ type: "metrics" }) as Collected[];
  const f = families.find((x) => x.name === "flag_evaluations_total")!;
  return Object.fromEntries(f.samples.map((s) => [s.labels!.reason, s.value]));
}

Deno.test("counts made on the HTTP thread reach the FlagActor's metrics within about a second", async () => {
  const path = flagsFile({ name: "f", enabled: true }, { name: "off", enabled: false });
  await using svc = await startService(embeddedSettings({ FLAGS_FILE: path }));
  const client = svc.actors.flags;
  await waitFor(() => client.environmentsHeld > 0, 10_000, "the first snapshot");
  const before = await actorReasons(client);
  for (let i = 0; i < 5; i++) {
    await (await send(svc.app, "POST", `${EVALUATE}/boolean`, { flag_name: "f" })).body?.cancel();
  }
  await (await send(svc.app, "POST", `${EVALUATE}/bulk`, {
    flags: [{ flag_name: "off" }, { flag_name: "missing" }],
  })).body?.cancel();
  const t0 = performance.now();
  await waitFor(
    async () => ((await actorReasons(client)).STATIC ?? 0) - (before.STATIC ?? 0) === 5,
    USAGE_HANDOFF_MS + 2_000,
    "the counts in the actor",
  );
  assert.ok(performance.now() - t0 < USAGE_HANDOFF_MS + 1_500);
  const after = await actorReasons(client);
  assert.equal((after.DISABLED ?? 0) - (before.DISABLED ?? 0), 1);
  assert.equal((after.ERROR ?? 0) - (before.ERROR ?? 0), 1);
});

Deno.test("a restarted FlagActor publishes every environment's definitions again", async () => {
  const path = flagsFile({ name: "dark-mode", enabled: true });
  const settings = embeddedSettings({ FLAGS_FILE: path });
  const snapshots: FlagsEvent[] = [];
  await using client = new FlagClient({
    settings,
    url: new URL("./fixtures/flags_crash_worker.ts", import.meta.url),
    onEvent: (e) => {
      if (e.type === "flag_snapshot") snapshots.push(e);
    },
  });
  await client.start();
  const answer = () =>
    JSON.parse(
      client.evaluator.evaluate("boolean", JSON.stringify({ flag_name: "dark-mode" })),
    ) as { value: unknown };
  assert.equal(answer().value, true);
  const envs = flagEnvironments(settings);
  snapshots.length = 0;
  await assert.rejects(client.call({ type: "crash" } as never));
  await waitFor(() => client.restarts === 1 && client.ready, 10_000, "the restart");
  await waitFor(
    () =>
      envs.every((env) =>
        snapshots.some((s) =>
          s.environments.some((e) => e.environment === env && e.doc !== undefined)
        )
      ),
    10_000,
    "every environment published with its document",
  );
  // A change made after the restart still reaches this thread through the new worker.
  Deno.writeTextFileSync(path, JSON.stringify(doc({ name: "dark-mode", enabled: false })));
  await waitFor(() => answer().value === false, 10_000, "the change through the new worker");
});
