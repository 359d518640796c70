/**
 * The service registry over time and across process deaths: heartbeat TTLs, removal after
 * SERVICE_DEREGISTER_AFTER, registrations surviving `kill -9` (SQLite; PostgreSQL +
 * ZooKeeper), and a restarted process taking over the znodes its killed predecessor's
 * session still owns. Runs in parallel with other files: it never stops a server.
 */
import assert from "node:assert/strict";
import {
  embeddedSettings,
  get,
  type InProcessApp as App,
  post,
  serverTest,
  startService,
  stubInstance,
  waitFor,
} from "./_helpers.ts";
import { type ServiceProcess, spawnService } from "./_process.ts";
import {
  call,
  killService,
  rid,
  sleep,
  stackChildEnv,
  tempDatabase,
  tempDir,
  waitBackend,
} from "./_pg.ts";
import {
  dropBasePath,
  instanceIds,
  listedIds,
  loggedSessions,
  openZk,
  ownedByOne,
  owners,
  registerAll,
  sessionLog,
  tempBasePath,
  waitOwners,
  zkProxy,
} from "./_zk.ts";

/** Status of one instance as GET /services/{name} lists it (undefined when not listed). */
async function statusOf(app: App, service: string, id: string): Promise<string | undefined> {
  const r = await get(app, `/api/v1/registry/services/${service}`);
  if (r.status === 404) return undefined;
  return r.body.instances.find((i: { instance_id: string }) => i.instance_id === id)?.status;
}

/** A URL nobody listens on: a stub started and shut down again. */
async function deadUrl(): Promise<string> {
  const s = stubInstance();
  await s.server.shutdown();
  return s.url;
}

Deno.test("heartbeat TTL: an instance that stops heartbeating turns unhealthy, and a heartbeat brings it back", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" }));
  const ref = { service_name: "svc-ttl", instance_id: "ttl-1" };
  const reg = await post(svc.app, "/api/v1/registry/register", {
    service_name: ref.service_name,
    service_url: "http://127.0.0.1:9",
    metadata: { instance_id: ref.instance_id },
    ttl_seconds: 1,
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));

  // Heartbeats every 300 ms for 2.4 s (more than two TTLs and two sweeps): it stays registered.
  let lastBeat = 0;
  for (let n = 0; n < 8; n++) {
    const hb = await post(svc.app, "/api/v1/registry/heartbeat", ref);
    lastBeat = Date.now();
    assert.equal(hb.status, 200, JSON.stringify(hb.body));
    assert.equal(hb.body.status, "registered");
    assert.equal(typeof hb.body.last_heartbeat, "string");
    assert.equal(await statusOf(svc.app, ref.service_name, ref.instance_id), "registered");
    await sleep(300);
  }

  // No more heartbeats: unhealthy once the TTL has passed and the 1 s sweep has run.
  await waitFor(
    async () => (await statusOf(svc.app, ref.service_name, ref.instance_id)) === "unhealthy",
    3_500,
    "unhealthy after the missed heartbeat",
  );
  const toUnhealthy = Date.now() - lastBeat;
  console.log(`  unhealthy ${toUnhealthy} ms after the last heartbeat (ttl 1 s, sweep 1 s)`);
  assert.ok(toUnhealthy >= 1_000, `not before the TTL: ${toUnhealthy} ms`);
  assert.ok(toUnhealthy <= 3_000, `within TTL + two sweeps: ${toUnhealthy} ms`);
  // Still listed: a missed heartbeat is not a deregistration (SERVICE_DEREGISTER_AFTER is 600 s).
  const listed = await get(svc.app, `/api/v1/registry/services/${ref.service_name}`);
  assert.equal(listed.body.instances.length, 1);
  const missed = listed.body.instances[0];
  console.log(`  after the missed heartbeat: ${JSON.stringify(missed)}`);

  // The instance was never health-checked (checks are off): registry_worker.ts's heartbeat
  // handler says "A heartbeat after a missed one brings the instance back".
  const back = await post(svc.app, "/api/v1/registry/heartbeat", ref);
  assert.equal(back.status, 200, JSON.stringify(back.body));
  const after = await statusOf(svc.app, ref.service_name, ref.instance_id);
  console.log(`  heartbeat after the miss answered ${JSON.stringify(back.body)}; listed ${after}`);
  assert.notEqual(
    back.body.status,
    "unhealthy",
    "a heartbeat after a missed one brings a never-health-checked instance back",
  );
  assert.notEqual(after, "unhealthy");
});

Deno.test("an instance unhealthy longer than SERVICE_DEREGISTER_AFTER is removed", async () => {
  await using svc = await startService(embeddedSettings({
    SERVICE_DEREGISTER_AFTER: "1",
    SERVICE_HEALTH_CHECK_INTERVAL: "0.2",
    HEALTH_CHECK_TIMEOUT: "0.3",
    HEALTH_CHECK_MAX_RETRIES: "0",
    HEALTH_CHECK_INITIAL_RETRY_DELAY: "0.01",
  }));
  const live = stubInstance();
  const dead = await deadUrl();
  try {
    const regs = [
      { service_name: "svc-mixed", service_url: live.url, metadata: { instance_id: "live-1" } },
      { service_name: "svc-mixed", service_url: dead, metadata: { instance_id: "dead-1" } },
      { service_name: "svc-gone", service_url: dead, metadata: { instance_id: "dead-2" } },
    ];
    for (const r of regs) {
      const res = await post(svc.app, "/api/v1/registry/register", r);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    const t0 = Date.now();
    const seen = new Map<string, number>();
    // registered → unhealthy (observed) → removed, for both dead instances.
    await waitFor(
      async () => {
        for (const [service, id] of [["svc-mixed", "dead-1"], ["svc-gone", "dead-2"]]) {
          const st = await statusOf(svc.app, service, id);
          if (st === "unhealthy" && !seen.has(`${id} unhealthy`)) {
            seen.set(`${id} unhealthy`, Date.now() - t0);
          }
          if (st === undefined && !seen.has(`${id} removed`)) {
            seen.set(`${id} removed`, Date.now() - t0);
          }
        }
        return seen.has("dead-1 removed") && seen.has("dead-2 removed");
      },
      5_000,
      "both dead instances removed",
    );
    console.log(`  ms after registering: ${JSON.stringify(Object.fromEntries(seen))}`);
    for (const id of ["dead-1", "dead-2"]) {
      assert.ok(seen.has(`${id} unhealthy`), `${id} was seen unhealthy before it went`);
      assert.ok(
        seen.get(`${id} removed`)! - seen.get(`${id} unhealthy`)! >= 900,
        `${id} stayed unhealthy about SERVICE_DEREGISTER_AFTER before removal`,
      );
    }
    // A service left with no instance is unknown; the healthy one stays, also later on.
    const gone = await get(svc.app, "/api/v1/registry/services/svc-gone");
    assert.equal(gone.status, 404);
    await sleep(2_500);
    const mixed = await get(svc.app, "/api/v1/registry/services/svc-mixed");
    assert.equal(mixed.status, 200);
    assert.deepEqual(
      mixed.body.instances.map((i: { instance_id: string; status: string }) => [
        i.instance_id,
        i.status,
      ]),
      [["live-1", "healthy"]],
    );
    assert.equal((await get(svc.app, "/api/v1/registry/services/svc-gone")).status, 404);
    const url = await get(svc.app, "/api/v1/registry/services/svc-mixed/url");
    assert.deepEqual(url.body, { service_name: "svc-mixed", url: live.url, instance_id: "live-1" });
  } finally {
    await live.server.shutdown();
  }
});

Deno.test("after kill -9 and restart every registration is back (embedded)", async () => {
  const dataDir = tempDir();
  const env = (n: number) => ({
    DATA_DIR: dataDir,
    SERVICE_INSTANCE_ID: `cs-t-${rid()}-${n}`,
    LOG_LEVEL: "WARNING",
    SERVICE_HEALTH_CHECK_ENABLED: "false",
  });
  const ids = instanceIds("emb", 20);
  let svc: ServiceProcess | undefined;
  try {
    svc = await spawnService(env(1));
    await registerAll(svc, "svc-emb", ids);
    await killService(svc);
    svc = await spawnService(env(2));
    assert.deepEqual(await listedIds(svc, "svc-emb"), ids);
    const one = await call(svc, "GET", "/api/v1/registry/services/svc-emb");
    const first = (one.body as { instances: { metadata: Record<string, string> }[] })
      .instances[0];
    assert.equal(first.metadata.zone, "z1");
  } finally {
    await killService(svc);
  }
});

/** Environment of a child on PostgreSQL `dbUrl` and ZooKeeper under `base`. */
function zkChildEnv(dbUrl: string, base: string, over: Record<string, string> = {}) {
  return stackChildEnv({
    DATABASE_URL: dbUrl,
    ZOOKEEPER_HOSTS: Deno.env.get("ZOOKEEPER_HOSTS")!,
    ZOOKEEPER_BASE_PATH: base,
    ZOOKEEPER_SESSION_TIMEOUT: "4",
    SERVICE_HEALTH_CHECK_ENABLED: "false",
    ...over,
  });
}

serverTest(
  "registry process",
  ["DATABASE_URL", "ZOOKEEPER_HOSTS"],
  "after kill -9 and restart every registration and znode is back (PostgreSQL + ZooKeeper)",
  async () => {
    const db = await tempDatabase();
    const base = tempBasePath();
    const dir = `${base}/svc-pz`;
    const ids = instanceIds("pz", 20);
    const zk = await openZk();
    let svc: ServiceProcess | undefined;
    try {
      svc = await spawnService(zkChildEnv(db.url, base), { keepBackends: true });
      await waitBackend(svc, "registry", "up", 15_000);
      await registerAll(svc, "svc-pz", ids);
      const before = await owners(zk, dir);
      assert.ok(
        ownedByOne(before, ids),
        `20 ephemerals of one session: ${JSON.stringify([...before])}`,
      );
      const oldSession = [...before.values()][0];
      const data = JSON.parse((await zk.getData(`${dir}/pz-07`))!);
      assert.equal(data.id, "pz-07");
      assert.equal(data.port, 20_007);

      await killService(svc);
      const killedAt = Date.now();
      // ZooKeeper ends the dead session's ephemerals once its timeout (4 s, ticks of 2 s) runs out.
      const vanished = await waitOwners(
        zk,
        dir,
        (o) => o.size === 0,
        12_000,
        "old ephemerals gone",
      );
      console.log(`  old session's ephemerals gone ${vanished.ms} ms after SIGKILL`);
      assert.ok(Date.now() - killedAt >= 3_000, "not before the session timeout");

      svc = await spawnService(zkChildEnv(db.url, base), { keepBackends: true });
      const back = await waitOwners(
        zk,
        dir,
        (o) => ownedByOne(o, ids, oldSession),
        10_000,
        "20 znodes re-created by the new process",
      );
      console.log(`  20 znodes back ${back.ms} ms after the new process listened`);
      assert.deepEqual(await listedIds(svc, "svc-pz"), ids);
      const again = JSON.parse((await zk.getData(`${dir}/pz-07`))!);
      assert.equal(again.id, "pz-07");
      assert.equal(again.payload.metadata.zone, "z1");
    } finally {
      await killService(svc);
      await dropBasePath(base);
      zk.close();
      await db.drop();
    }
  },
);

serverTest(
  "registry process",
  ["DATABASE_URL", "ZOOKEEPER_HOSTS"],
  "a znode left by a killed process's session is taken over by the restarted one",
  async () => {
    const db = await tempDatabase();
    const base = tempBasePath();
    const dir = `${base}/svc-to`;
    const ids = instanceIds("to", 20);
    const zk = await openZk();
    let svc: ServiceProcess | undefined;
    try {
      svc = await spawnService(zkChildEnv(db.url, base), { keepBackends: true });
      await waitBackend(svc, "registry", "up", 15_000);
      await registerAll(svc, "svc-to", ids);
      const before = await owners(zk, dir);
      assert.ok(
        ownedByOne(before, ids),
        `20 ephemerals of one session: ${JSON.stringify([...before])}`,
      );
      const oldSession = [...before.values()][0];

      await killService(svc);
      const killedAt = Date.now();
      // At once, before the old session expires: its ephemerals are still there.
      svc = await spawnService(zkChildEnv(db.url, base, { LOG_LEVEL: "INFO" }), {
        keepBackends: true,
      });
      const stillOld = await owners(zk, dir);
      console.log(
        `  new process listening ${Date.now() - killedAt} ms after SIGKILL; ` +
          `${[...stillOld.values()].filter((o) => o === oldSession).length} znodes still old`,
      );
      const taken = await waitOwners(
        zk,
        dir,
        (o) => ownedByOne(o, ids, oldSession),
        4_000 + 4_000,
        "every znode owned by the new process's session",
      );
      const newSession = [...taken.owners.values()][0];
      console.log(`  taken over ${Date.now() - killedAt} ms after SIGKILL`);
      assert.notEqual(newSession, oldSession);
      const logged = loggedSessions(svc);
      assert.ok(logged.includes(newSession), `owner ${newSession} is the new process's ${logged}`);

      // Past the old session's expiry (4 s timeout, checked in 2 s ticks): nothing is lost.
      await sleep(Math.max(0, killedAt + 4_000 + 4_000 - Date.now()));
      const later = await owners(zk, dir);
      assert.ok(
        ownedByOne(later, ids, oldSession) && [...later.values()][0] === newSession,
        `after the old session expired: ${JSON.stringify([...later])}`,
      );
      assert.deepEqual(await listedIds(svc, "svc-to"), ids);
    } finally {
      await killService(svc);
      await dropBasePath(base);
      zk.close();
      await db.drop();
    }
  },
);

/** A child on embedded SQLite records and ZooKeeper at `hosts` (a proxy) under `base`. */
function proxiedChild(hosts: string, base: string) {
  return spawnService(
    stackChildEnv({
      DATABASE_URL: "",
      ZOOKEEPER_HOSTS: hosts,
      ZOOKEEPER_BASE_PATH: base,
      ZOOKEEPER_SESSION_TIMEOUT: "4",
      LOG_LEVEL: "INFO",
      SERVICE_HEALTH_CHECK_ENABLED: "false",
    }),
    { keepBackends: true },
  );
}

serverTest(
  "registry process",
  ["ZOOKEEPER_HOSTS"],
  "session expired during a network partition: every znode is re-created by a new session",
  async () => {
    const base = tempBasePath();
    const dir = `${base}/svc-np`;
    const ids = instanceIds("np", 10);
    const proxy = zkProxy();
    const zk = await openZk();
    let svc: ServiceProcess | undefined;
    try {
      svc = await proxiedChild(proxy.hosts, base);
      await waitBackend(svc, "registry", "up", 15_000);
      await registerAll(svc, "svc-np", ids);
      const before = await owners(zk, dir);
      assert.ok(ownedByOne(before, ids), JSON.stringify([...before]));
      const oldSession = [...before.values()][0];

      // Partitioned (no reset either way) for twice the session timeout: ZooKeeper expires
      // the session and drops its ephemerals.
      const t0 = Date.now();
      proxy.partition();
      const gone = await waitOwners(zk, dir, (o) => o.size === 0, 10_000, "ephemerals expired");
      console.log(`  partitioned: ZooKeeper dropped the ephemerals after ${gone.ms} ms`);
      const reads = await call(svc, "GET", "/api/v1/registry/services/svc-np");
      assert.equal(reads.status, 200, "reads answer from the durable records");
      const down = await waitBackend(svc, "registry", "down", 8_000);
      console.log(`  /health registry down ${Date.now() - t0 - down} ms into the partition`);
      await sleep(Math.max(0, t0 + 8_000 - Date.now()));

      proxy.heal();
      const healed = Date.now();
      const back = await waitOwners(
        zk,
        dir,
        (o) => ownedByOne(o, ids, oldSession),
        4_000 + 5_000,
        "all 10 znodes re-created by a new session",
      );
      const newSession = [...back.owners.values()][0];
      console.log(`  all 10 znodes back ${back.ms} ms after the partition healed`);
      console.log(`  child's session log:\n    ${sessionLog(svc).join("\n    ")}`);
      assert.ok(loggedSessions(svc).includes(newSession), "owned by the child's new session");
      assert.ok(sessionLog(svc).some((l) => l.includes("expired")), "the child saw 'expired'");
      const up = await waitBackend(svc, "registry", "up", 10_000);
      console.log(
        `  /health registry up ${Date.now() - healed} ms after healing (${up} ms polled)`,
      );
      assert.deepEqual(await listedIds(svc, "svc-np"), ids);
    } finally {
      await killService(svc);
      proxy.close();
      zk.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "registry process",
  ["ZOOKEEPER_HOSTS"],
  "a ZooKeeper that accepts a connection but never answers does not wedge the registry",
  async () => {
    const base = tempBasePath();
    const dir = `${base}/svc-bh`;
    const ids = instanceIds("bh", 10);
    const proxy = zkProxy();
    const zk = await openZk();
    let svc: ServiceProcess | undefined;
    try {
      svc = await proxiedChild(proxy.hosts, base);
      await waitBackend(svc, "registry", "up", 15_000);
      await registerAll(svc, "svc-bh", ids);
      const before = await owners(zk, dir);
      assert.ok(ownedByOne(before, ids), JSON.stringify([...before]));

      // ZooKeeper "restarts": connections drop; for 2 s (less than the 4 s session timeout) a
      // new connection is accepted but never answered (ZooKeeper 3.8.0 leaves such a socket
      // open when it hits its startup NullPointerException); then it serves again.
      proxy.blackhole();
      await sleep(2_000);
      proxy.serve();
      const served = Date.now();
      console.log(`  connections: ${JSON.stringify(proxy.counts())} (silent = never answered)`);
      try {
        // Past the session timeout, whether the session resumed or expired and was replaced,
        // every znode must be there, owned by one live session.
        await sleep(Math.max(0, served + 4_000 + 2_000 - Date.now()));
        await waitOwners(
          zk,
          dir,
          (o) => ownedByOne(o, ids),
          3_000,
          "all 10 znodes once ZooKeeper serves again (session timeout + 5 s)",
        );
      } finally {
        const h = await call(svc, "GET", "/health");
        console.log(
          `  ${Date.now() - served} ms after ZooKeeper served again: ` +
            `${(await owners(zk, dir)).size} znodes, /health registry ` +
            `${
              JSON.stringify((h.body as { backends: Record<string, unknown> }).backends.registry)
            }`,
        );
        console.log(`  connections: ${JSON.stringify(proxy.counts())}`);
        console.log(`  child's session log:\n    ${sessionLog(svc).join("\n    ")}`);
      }
      await waitBackend(svc, "registry", "up", 6_000);
      assert.deepEqual(await listedIds(svc, "svc-bh"), ids);
    } finally {
      await killService(svc);
      proxy.close();
      zk.close();
      await dropBasePath(base);
    }
  },
);

serverTest(
  "registry process",
  ["ZOOKEEPER_HOSTS"],
  "a register answered 503 while ZooKeeper is unreachable leaves no half-registered instance",
  async () => {
    const base = tempBasePath();
    const dir = `${base}/svc-lt`;
    const ids = instanceIds("lt", 3);
    const proxy = zkProxy();
    const stub = stubInstance();
    const zk = await openZk();
    let svc: ServiceProcess | undefined;
    try {
      svc = await spawnService(
        stackChildEnv({
          DATABASE_URL: "",
          ZOOKEEPER_HOSTS: proxy.hosts,
          ZOOKEEPER_BASE_PATH: base,
          ZOOKEEPER_SESSION_TIMEOUT: "4",
          LOG_LEVEL: "INFO",
          SERVICE_HEALTH_CHECK_INTERVAL: "0.5",
          HEALTH_CHECK_TIMEOUT: "0.5",
          HEALTH_CHECK_MAX_RETRIES: "0",
        }),
        { keepBackends: true },
      );
      await waitBackend(svc, "registry", "up", 15_000);
      for (const id of ids) {
        const r = await call(svc, "POST", "/api/v1/registry/register", {
          service_name: "svc-lt",
          service_url: stub.url,
          metadata: { instance_id: id },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      // ZooKeeper unreachable (connections refused) for 2 s, less than the session timeout.
      proxy.refuse();
      await sleep(300);
      const t = Date.now();
      const late = await call(svc, "POST", "/api/v1/registry/register", {
        service_name: "svc-lt",
        service_url: stub.url,
        metadata: { instance_id: "lt-late" },
      });
      const ms = Date.now() - t;
      assert.equal(late.status, 503, JSON.stringify(late.body));
      assert.equal(late.headers.get("content-type"), "application/problem+json");
      assert.ok(ms < 6_000, `answered in ${ms} ms`);
      const listedDuring = (await listedIds(svc, "svc-lt"))?.includes("lt-late");
      await sleep(1_700);
      proxy.serve();

      // The others are all healthy (checked by the leader once it leads again); the refused
      // one is either gone, or a full registration: znode and health checks like the others.
      await waitFor(
        async () => {
          const r = await call(svc!, "GET", "/api/v1/registry/discover/svc-lt");
          const healthy = (r.body as { instances: { instance_id: string }[] }).instances
            .map((i) => i.instance_id);
          return ids.every((id) => healthy.includes(id));
        },
        10_000,
        "the acknowledged instances healthy",
      );
      await sleep(2_000);
      const r = await call(svc, "GET", "/api/v1/registry/services/svc-lt");
      const kept = (r.body as { instances: { instance_id: string; status: string }[] }).instances
        .find((i) => i.instance_id === "lt-late");
      const znode = await zk.owner(`${dir}/lt-late`);
      console.log(
        `  register while unreachable: ${late.status} in ${ms} ms ${JSON.stringify(late.body)}; ` +
          `listed right after the 503: ${listedDuring}; once ZooKeeper is back: ` +
          `${JSON.stringify(kept)}, znode owner ${JSON.stringify(znode)}`,
      );
      if (kept) {
        assert.notEqual(znode, null, "a kept instance has its znode");
        assert.equal(kept.status, "healthy", "a kept instance is health-checked like the others");
      } else {
        assert.equal(znode, null, "a dropped instance has no znode");
      }
    } finally {
      await killService(svc);
      proxy.close();
      await stub.server.shutdown();
      zk.close();
      await dropBasePath(base);
    }
  },
);
