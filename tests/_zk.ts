/**
 * Helpers for registry tests against the real ZooKeeper (and the rest of the stack): a test
 * ZooKeeper session, a throw-away base path, znode owners, `/health` polling of a child
 * service, registering many instances, and stopping/starting a stack server.
 */
import assert from "node:assert/strict";
import { ZkSession } from "../lib/backends/zookeeper.ts";
import type { Instance } from "../lib/registry/model.ts";
import { ZookeeperRegistry } from "../lib/registry/zookeeper_registry.ts";
import { call, rid, sleep } from "./_pg.ts";
import { embeddedSettings, startService, waitFor } from "./_helpers.ts";
import type { ServiceProcess } from "./_process.ts";

/** A fresh base path `/cs-t-<random>` for one test. */
export function tempBasePath(): string {
  return `/cs-t-${rid()}`;
}

/** The service (in process) on the local ZooKeeper under `base`, once its session is up. */
export async function startOnZookeeper(base: string, over: Record<string, string> = {}) {
  const svc = await startService(embeddedSettings({
    ZOOKEEPER_HOSTS: Deno.env.get("ZOOKEEPER_HOSTS")!,
    ZOOKEEPER_BASE_PATH: base,
    ...over,
  }));
  await waitFor(
    async () => {
      const h = await (await svc.app.request("/health")).json();
      return h.backends.registry?.status === "up";
    },
    10_000,
    "zookeeper session",
  );
  return svc;
}

/** An instance as a registration through the API makes it (`registered`, on 127.0.0.1). */
export function apiInstance(service: string, id: string, port = 8080): Instance {
  return {
    service_name: service,
    instance_id: id,
    service_url: `http://127.0.0.1:${port}`,
    health_check_url: `http://127.0.0.1:${port}/health`,
    metadata: {},
    status: "registered",
    last_health_check: null,
    registered_at: new Date().toISOString(),
    ttl_seconds: null,
    last_heartbeat: null,
    unhealthy_since: null,
  };
}

/** A ZookeeperRegistry (the live view alone, no actor) under `base`, once its session is open. */
export async function openRegistry(base: string): Promise<ZookeeperRegistry> {
  const reg = new ZookeeperRegistry({
    hosts: Deno.env.get("ZOOKEEPER_HOSTS")!,
    basePath: base,
    sessionTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
  });
  reg.start();
  await waitFor(() => reg.connected, 10_000, "zookeeper session");
  return reg;
}

/** A connected session of the test itself (not the service's). */
export async function openZk(): Promise<ZkSession> {
  const hosts = Deno.env.get("ZOOKEEPER_HOSTS");
  if (!hosts) throw new Error("ZOOKEEPER_HOSTS is not set");
  const zk = new ZkSession(hosts, { sessionTimeoutMs: 20_000, connectTimeoutMs: 15_000 });
  await zk.connect();
  return zk;
}

/** Removes `path` and everything under it; absent is fine. */
export async function removeTree(zk: ZkSession, path: string): Promise<void> {
  for (const c of await zk.getChildren(path)) await removeTree(zk, `${path}/${c}`);
  await zk.remove(path);
}

/** Best-effort cleanup of a test base path (and its `.leader` election node). */
export async function dropBasePath(path: string): Promise<void> {
  let zk: ZkSession | undefined;
  try {
    zk = await openZk();
    await removeTree(zk, path);
    await removeTree(zk, `${path}.leader`);
  } catch {
    /* best effort: ZooKeeper may be down after a failed outage test */
  } finally {
    zk?.close();
  }
}

/** Child name → ephemeral owner session (hex) under `dir`. */
export async function owners(zk: ZkSession, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const c of (await zk.getChildren(dir)).sort()) {
    const o = await zk.owner(`${dir}/${c}`);
    if (o !== null) out.set(c, o);
  }
  return out;
}

/**
 * Polls `owners(dir)` until `done` holds; returns them and the ms it took.
 * @throws {Error} naming `what` and the last owners seen, after `timeoutMs`.
 */
export async function waitOwners(
  zk: ZkSession,
  dir: string,
  done: (o: Map<string, string>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<{ owners: Map<string, string>; ms: number }> {
  const t0 = Date.now();
  let last = new Map<string, string>();
  let err: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      last = await owners(zk, dir);
      if (done(last)) return { owners: last, ms: Date.now() - t0 };
    } catch (e) {
      err = e; // the test session may itself be reconnecting
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last: ` +
      `${JSON.stringify([...last])}${err ? ` (last error: ${err})` : ""}`,
  );
}

/** True when `o` holds exactly `names`, all owned by one ephemeral session (not `not`). */
export function ownedByOne(o: Map<string, string>, names: string[], not?: string): boolean {
  if (o.size !== names.length || !names.every((n) => o.has(n))) return false;
  const s = new Set(o.values());
  if (s.size !== 1) return false;
  const [only] = s;
  return only !== "" && only !== not;
}

/** Instance ids `<prefix>-00` … for `n` instances. */
export function instanceIds(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
}

/** Registers each id of `service` (service_url on a distinct port); every answer must be 201. */
export async function registerAll(
  svc: ServiceProcess,
  service: string,
  ids: string[],
): Promise<void> {
  for (const [n, id] of ids.entries()) {
    const r = await call(svc, "POST", "/api/v1/registry/register", {
      service_name: service,
      service_url: `http://127.0.0.1:${20_000 + n}`,
      metadata: { instance_id: id, zone: "z1" },
    });
    assert.equal(r.status, 201, `register ${id}: ${JSON.stringify(r.body)}`);
  }
}

/** Instance ids listed by `GET /api/v1/registry/services/{service}` (null on 404). */
export async function listedIds(svc: ServiceProcess, service: string): Promise<string[] | null> {
  const r = await call(svc, "GET", `/api/v1/registry/services/${service}`);
  if (r.status === 404) return null;
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body as { instances: { instance_id: string }[] }).instances
    .map((i) => i.instance_id).sort();
}

/** The session id the child logged as "zookeeper session open" (needs LOG_LEVEL=INFO). */
export function loggedSessions(svc: ServiceProcess): string[] {
  const out: string[] = [];
  for (const l of svc.lines) {
    if (!l.includes('"zookeeper session open"')) continue;
    try {
      out.push(String(JSON.parse(l).session));
    } catch { /* not a JSON line */ }
  }
  return out;
}

/** The child's log lines about its ZooKeeper session, shortened (needs LOG_LEVEL=INFO). */
export function sessionLog(svc: ServiceProcess): string[] {
  return svc.lines.filter((l) => /zookeeper (session|connect)|ephemeral/.test(l))
    .map((l) => {
      try {
        const { ts, msg, session, error } = JSON.parse(l);
        return `${ts} ${msg}${session ? ` ${session}` : ""}${error ? ` (${error})` : ""}`;
      } catch {
        return l;
      }
    });
}

/** One proxied client connection: downstream (the service) ↔ upstream (ZooKeeper). */
interface Link {
  down: Deno.Conn;
  up: Deno.Conn | null;
  /** Bytes held back during a partition, per direction. */
  held: { toUp: Uint8Array[]; toDown: Uint8Array[] };
  /** A side ended while partitioned: the other side learns it when the partition heals. */
  endedWhilePartitioned: boolean;
  closed: boolean;
}

export interface ZkProxy {
  /** ZOOKEEPER_HOSTS for the service: the proxy's address. */
  hosts: string;
  /**
   * A network partition: nothing is delivered either way and nothing is closed (no RST);
   * bytes are held as TCP would retransmit them.
   */
  partition(): void;
  /**
   * Heals a partition: held bytes are delivered; a connection whose other side ended
   * meanwhile (ZooKeeper closes an expired session's connection) is closed now, as the
   * first packet after healing would meet a reset.
   */
  heal(): void;
  /**
   * A ZooKeeper that accepts connections but never answers (as ZooKeeper 3.8.0 does with a
   * connection that hits its NullPointerException during startup): every current connection
   * is closed, and each new one is accepted and then left silent and open for good.
   */
  blackhole(): void;
  /**
   * A ZooKeeper that is down: every current connection is closed, and each new one is closed
   * at once (the client sees a refused connection and keeps retrying).
   */
  refuse(): void;
  /** New connections are forwarded again (silent ones stay silent). */
  serve(): void;
  /** Connections accepted so far, by fate. */
  counts(): { forwarded: number; silent: number };
  close(): void;
}

/** A TCP proxy in front of the real ZooKeeper, to partition or black-hole one service. */
export function zkProxy(): ZkProxy {
  const target = Deno.env.get("ZOOKEEPER_HOSTS")?.split(",")[0];
  if (!target) throw new Error("ZOOKEEPER_HOSTS is not set");
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.split(":").pop())];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const links = new Set<Link>();
  const silent = new Set<Deno.Conn>();
  let mode = "serve" as "serve" | "blackhole" | "refuse";
  let partitioned = false;
  let forwarded = 0;

  const end = (l: Link) => {
    if (l.closed) return;
    l.closed = true;
    links.delete(l);
    for (const c of [l.down, l.up]) {
      try {
        c?.close();
      } catch { /* already closed */ }
    }
  };
  const write = async (to: Deno.Conn, chunk: Uint8Array) => {
    let off = 0;
    while (off < chunk.length) off += await to.write(chunk.subarray(off));
  };
  const pump = async (l: Link, from: Deno.Conn, to: Deno.Conn, held: Uint8Array[]) => {
    const buf = new Uint8Array(64 * 1024);
    while (!l.closed) {
      let n: number | null = null;
      try {
        n = await from.read(buf);
      } catch { /* reset or closed */ }
      if (n === null) {
        if (partitioned) l.endedWhilePartitioned = true;
        else end(l);
        return;
      }
      const chunk = buf.slice(0, n);
      if (partitioned) held.push(chunk);
      else await write(to, chunk).catch(() => end(l));
    }
  };
  const drain = async (c: Deno.Conn) => {
    const buf = new Uint8Array(4096);
    try {
      while ((await c.read(buf)) !== null) { /* never answered */ }
    } catch { /* closed */ }
  };

  (async () => {
    for await (const down of listener) {
      if (mode === "refuse") {
        down.close();
        continue;
      }
      if (mode === "blackhole") {
        silent.add(down);
        void drain(down);
        continue;
      }
      forwarded++;
      const l: Link = {
        down,
        up: null,
        held: { toUp: [], toDown: [] },
        endedWhilePartitioned: false,
        closed: false,
      };
      links.add(l);
      try {
        l.up = await Deno.connect({ hostname: host, port });
      } catch {
        end(l);
        continue;
      }
      void pump(l, down, l.up, l.held.toUp);
      void pump(l, l.up, down, l.held.toDown);
    }
  })().catch(() => {/* listener closed */});

  return {
    hosts: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    partition() {
      partitioned = true;
    },
    heal() {
      partitioned = false;
      for (const l of [...links]) {
        void (async () => {
          try {
            if (l.up) { for (const c of l.held.toUp.splice(0)) await write(l.up, c); }
            for (const c of l.held.toDown.splice(0)) await write(l.down, c);
          } catch {
            end(l);
          }
          if (l.endedWhilePartitioned) end(l);
        })();
      }
    },
    blackhole() {
      mode = "blackhole";
      for (const l of [...links]) end(l);
    },
    refuse() {
      mode = "refuse";
      for (const l of [...links]) end(l);
    },
    serve() {
      mode = "serve";
    },
    counts: () => ({ forwarded, silent: silent.size }),
    close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const l of [...links]) end(l);
      for (const c of silent) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      silent.clear();
    },
  };
}
