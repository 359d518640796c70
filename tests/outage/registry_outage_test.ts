/**
 * The service registry while ZooKeeper is down: a short restart (shorter than the session
 * timeout) and a long outage (longer than it), after which every registered instance's
 * ephemeral znode must be back; reads answer from the durable records meanwhile and
 * registering answers 503. These stop and start ZooKeeper through `scripts/stack.sh`, so they
 * run serially after the parallel suite; ZooKeeper is always started again in a `finally`.
 */
import assert from "node:assert/strict";
import { PROBLEM, serverTest, stack, stubInstance } from "../_helpers.ts";
import { type ServiceProcess, spawnService } from "../_process.ts";
import { call, killService, sleep, stackChildEnv, waitBackend } from "../_pg.ts";
import {
  dropBasePath,
  instanceIds,
  listedIds,
  loggedSessions,
  openZk,
  ownedByOne,
  owners,
  sessionLog,
  tempBasePath,
  waitOwners,
} from "../_zk.ts";
import type { ZkSession } from "../../lib/backends/zookeeper.ts";

const SESSION_MS = 4_000;

/** A child on embedded SQLite records and ZooKeeper under `base` (4 s sessions, INFO logs). */
function spawnZkChild(base: string, over: Record<string, string> = {}) {
  return spawnService(
    stackChildEnv({
      DATABASE_URL: "",
      ZOOKEEPER_HOSTS: Deno.env.get("ZOOKEEPER_HOSTS")!,
      ZOOKEEPER_BASE_PATH: base,
      ZOOKEEPER_SESSION_TIMEOUT: String(SESSION_MS / 1000),
      LOG_LEVEL: "INFO",
      SERVICE_HEALTH_CHECK_ENABLED: "false",
      ...over,
    }),
    { keepBackends: true },
  );
}

/** The entries of `o` named in `ids`. */
function only(o: Map<string, string>, ids: string[]): Map<string, string> {
  return new Map([...o].filter(([k]) => ids.includes(k)));
}

/** Registers `ids` of `service` at `url` (distinct ports when no url); each must be 201. */
async function registerTen(svc: ServiceProcess, service: string, ids: string[], url?: string) {
  for (const [n, id] of ids.entries()) {
    const r = await call(svc, "POST", "/api/v1/registry/register", {
      service_name: service,
      service_url: url ?? `http://127.0.0.1:${20_000 + n}`,
      metadata: { instance_id: id },
    });
    assert.equal(r.status, 201, `register ${id}: ${JSON.stringify(r.body)}`);
  }
}

serverTest(
  "registry outage",
  ["ZOOKEEPER_HOSTS"],
  "ZooKeeper restarted: every registered instance's znode is back within the session timeout",
  async () => {
    const base = tempBasePath();
    const dir = `${base}/svc-zr`;
    const ids = instanceIds("zr", 10);
    let svc: ServiceProcess | undefined;
    let zk: ZkSession | undefined = await openZk();
    let zkStopped = false;
    try {
      svc = await spawnZkChild(base);
      await waitBackend(svc, "registry", "up", 15_000);
      await registerTen(svc, "svc-zr", ids);
      const before = await owners(zk, dir);
      assert.ok(ownedByOne(before, ids), JSON.stringify([...before]));
      const oldSession = [...before.values()][0];
      zk.close();
      zk = undefined;

      const t0 = Date.now();
      zkStopped = true;
      await stack("stop", "zookeeper");
      const stoppedIn = Date.now() - t0;
      await sleep(2_000);
      const t1 = Date.now();
      await stack("start", "zookeeper");
      zkStopped = false;
      const ready = Date.now();
      console.log(
        `  zookeeper stop took ${stoppedIn} ms, start ${ready - t1} ms; ` +
          `down ${ready - t0} ms in all`,
      );

      zk = await openZk();
      const back = await waitOwners(
        zk,
        dir,
        (o) => ownedByOne(o, ids),
        SESSION_MS + 5_000,
        "all 10 znodes after the restart",
      );
      const owner = [...back.owners.values()][0];
      const resumed = owner === oldSession;
      console.log(
        `  all 10 znodes present ${back.ms} ms after ZooKeeper was ready; ` +
          (resumed
            ? `same session ${owner} resumed (the server kept it across the restart)`
            : `new session ${owner} (old ${oldSession} expired; the registry re-created them)`),
      );
      console.log(`  child's session log:\n    ${sessionLog(svc).join("\n    ")}`);
      if (!resumed) assert.ok(loggedSessions(svc).includes(owner), "owned by the child's session");
      const up = await waitBackend(svc, "registry", "up", 10_000);
      console.log(`  /health registry up ${up} ms after the znodes were back`);
      assert.deepEqual(await listedIds(svc, "svc-zr"), ids);
      // And they stay: a later check after another session timeout.
      await sleep(SESSION_MS + 2_000);
      const later = await owners(zk, dir);
      assert.ok(ownedByOne(later, ids), `still there later: ${JSON.stringify([...later])}`);
    } finally {
      if (zkStopped) await stack("start", "zookeeper");
      await killService(svc);
      zk?.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "registry outage",
  ["ZOOKEEPER_HOSTS"],
  "forced session expiry: every znode is re-created",
  // ZooKeeper down for twice the session timeout. A standalone server with a persistent data
  // dir restores its sessions with a fresh timeout when it starts, so the client usually
  // resumes its session rather than seeing "expired"; either way all 10 znodes must be back.
  // registry_process_test.ts forces a real expiry with a partition (proxy) instead.
  async () => {
    const base = tempBasePath();
    const dir = `${base}/svc-zx`;
    const ids = instanceIds("zx", 10);
    const stub = stubInstance();
    let svc: ServiceProcess | undefined;
    let zk: ZkSession | undefined = await openZk();
    let zkStopped = false;
    try {
      svc = await spawnZkChild(base, {
        SERVICE_HEALTH_CHECK_ENABLED: "true",
        SERVICE_HEALTH_CHECK_INTERVAL: "1",
        HEALTH_CHECK_TIMEOUT: "0.5",
        HEALTH_CHECK_MAX_RETRIES: "0",
      });
      await waitBackend(svc, "registry", "up", 15_000);
      await registerTen(svc, "svc-zx", ids, stub.url);
      const before = await owners(zk, dir);
      assert.ok(ownedByOne(before, ids), JSON.stringify([...before]));
      const oldSession = [...before.values()][0];
      zk.close();
      zk = undefined;

      const t0 = Date.now();
      zkStopped = true;
      await stack("stop", "zookeeper");
      const stopped = Date.now();

      // While ZooKeeper is down: reads answer from the durable records…
      const rt = Date.now();
      const list = await call(svc, "GET", "/api/v1/registry/services");
      const readMs = Date.now() - rt;
      assert.equal(list.status, 200, JSON.stringify(list.body));
      const listed = (list.body as { service_name: string; instances: unknown[] }[])
        .find((s) => s.service_name === "svc-zx");
      assert.equal(listed?.instances.length, 10);
      // …and a register is refused promptly, as a problem.
      const wt = Date.now();
      const reg = await call(svc, "POST", "/api/v1/registry/register", {
        service_name: "svc-zx",
        service_url: stub.url,
        metadata: { instance_id: "zx-late" },
      });
      const regMs = Date.now() - wt;
      console.log(
        `  ZooKeeper down (stop took ${stopped - t0} ms): GET /services ${list.status} in ` +
          `${readMs} ms; register ${reg.status} ${
            reg.headers.get("content-type")
          } in ${regMs} ms ` +
          JSON.stringify(reg.body),
      );
      assert.equal(reg.status, 503);
      assert.equal(reg.headers.get("content-type"), PROBLEM);
      assert.ok(regMs < 6_000, `register answered in ${regMs} ms`);
      const lateListed = (await listedIds(svc, "svc-zx"))?.includes("zx-late");
      const down = await waitBackend(svc, "registry", "down", 7_000);
      console.log(
        `  after the 503 the refused instance is ${lateListed ? "" : "NOT "}listed; ` +
          `/health registry down ${Date.now() - t0 - down} ms into the outage ` +
          `(seen after ${down} ms of polling)`,
      );

      // Down for longer than the session timeout.
      await sleep(Math.max(0, t0 + 2 * SESSION_MS - Date.now()));
      const t1 = Date.now();
      await stack("start", "zookeeper");
      zkStopped = false;
      const ready = Date.now();
      console.log(`  zookeeper down ${ready - t0} ms in all (start took ${ready - t1} ms)`);

      zk = await openZk();
      const back = await waitOwners(
        zk,
        dir,
        (o) => ownedByOne(only(o, ids), ids),
        SESSION_MS + 5_000,
        "all 10 znodes after the outage",
      );
      const owner = [...back.owners.values()][0];
      const expired = owner !== oldSession;
      console.log(
        `  all 10 znodes present ${back.ms} ms after ZooKeeper was ready, owner ${owner}: ` +
          (expired
            ? `a new session (old ${oldSession} expired; re-created by the registry)`
            : `the same session resumed (the standalone server restored it from its data dir)`),
      );
      console.log(`  child's session log:\n    ${sessionLog(svc).join("\n    ")}`);
      if (expired) {
        assert.ok(loggedSessions(svc).includes(owner), "owned by the child's new session");
        // Either the server reported the expiry, or the registry's watchdog gave up on the
        // session first (disconnected longer than its timeout) and opened a new one.
        assert.ok(
          sessionLog(svc).some((l) => l.includes("expired") || l.includes("opening a new one")),
          "the child replaced its session",
        );
      }
      for (const id of ids) assert.notEqual(back.owners.get(id), "", `${id} is ephemeral`);
      // Past the (restored or new) session's timeout: still there, so a live session owns them.
      await sleep(Math.max(0, ready + SESSION_MS + 2_000 - Date.now()));
      const later = await owners(zk, dir);
      assert.ok(ownedByOne(only(later, ids), ids), `still there: ${JSON.stringify([...later])}`);
      await waitBackend(svc, "registry", "up", 6_000);
      console.log(`  /health registry up ${Date.now() - ready} ms after ZooKeeper was ready`);

      // The register refused with 503 while ZooKeeper was down (its record is kept: see
      // registry_process_test.ts for what follows from that).
      console.log(
        `  the instance refused with 503: listed ${
          (await listedIds(svc, "svc-zx"))?.includes("zx-late")
        }, znode owner ${JSON.stringify(await zk.owner(`${dir}/zx-late`))}`,
      );
    } finally {
      if (zkStopped) await stack("start", "zookeeper");
      await killService(svc);
      zk?.close();
      await stub.server.shutdown();
      await dropBasePath(base);
    }
  },
);
