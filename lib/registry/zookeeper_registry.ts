/**
 * The live view in ZooKeeper: one ephemeral znode per registered instance at
 * `base/{service}/{instance}`, holding Curator's ServiceInstance JSON, owned by this actor's
 * session. The local map of registrations is the truth and is re-applied on every
 * (re)connect and after session expiry (Curator's pattern); a znode left by an older
 * session (this service before a restart) is taken over.
 */
import { CreateMode, ZkCode, zkCode, ZkSession } from "../backends/zookeeper.ts";
import { BackendUnavailableError, ConflictError } from "../errors.ts";
import { log } from "../log.ts";
import { curatorJson, type Instance } from "./model.ts";
import type { RegistryBackend } from "./backend.ts";
import { classifyZnode } from "./foreign.ts";
import { type ForeignSink, ForeignWatch } from "./zookeeper_watch.ts";

export interface ZkRegistryOptions {
  hosts: string;
  basePath: string;
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
  /** Told whenever this replica gains or loses leadership. */
  onLeadership?: (leader: boolean) => void;
  /** Data of this replica's election node (its instance id), for operators. */
  candidate?: string;
  /** Appended to a foreign instance's URL for its health check (default `/actuator/health`). */
  instanceHealthPath?: string;
}

/** How often the election is re-read (no watches: one short read per second). */
const ELECTION_POLL_MS = 1_000;

export class ZookeeperRegistry implements RegistryBackend {
  readonly kind = "zookeeper";
  readonly #o: ZkRegistryOptions;
  #session: ZkSession | null = null;
  /** Every registration this replica knows of (its own and, through the store, its peers'). */
  #live = new Map<string, Instance>();
  /**
   * Those whose znode this replica wrote (registered, health-updated or re-created through
   * it): re-applied on every (re)connect. The others are their writers' to keep; when one of
   * theirs goes, {@link recreate} writes it back if it is still registered.
   */
  #owned = new Set<string>();
  #closed = false;
  #reconnectDelay = 200;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #electionTimer: ReturnType<typeof setInterval> | undefined;
  /** This replica's election node and the session that owns it. */
  #candidate: { session: ZkSession; path: string } | null = null;
  #leader = false;
  /** When the current session last stopped being connected (or was opened). */
  #disconnectedSince = Date.now();
  /** Instances others registered under the base path, once `watch` was called. */
  #foreign: ForeignWatch | null = null;

  constructor(o: ZkRegistryOptions) {
    this.#o = o;
  }

  /** Whether this replica holds leadership (it schedules health checks). */
  get leader(): boolean {
    return this.#leader;
  }

  /** Election nodes live beside the services, e.g. `/services.leader`. */
  get electionPath(): string {
    return `${this.#o.basePath === "/" ? "" : this.#o.basePath}.leader`;
  }

  #setLeader(v: boolean): void {
    if (v === this.#leader) return;
    this.#leader = v;
    log.info(v ? "this replica leads health checking" : "this replica no longer leads", {
      candidate: this.#o.candidate,
    });
    this.#o.onLeadership?.(v);
  }

  /**
   * Leader election with ephemeral sequential nodes (ZooKeeper's recipe): the lowest node
   * leads. Each session creates one node; when the leader's session ends its node goes and
   * the next replica leads within the session timeout plus one poll.
   */
  async #elect(): Promise<void> {
    const s = this.#session;
    if (!s || !s.connected) {
      this.#setLeader(false);
      return;
    }
    try {
      if (this.#candidate?.session !== s) {
        await s.mkdirp(this.electionPath);
        const path = await s.create(
          `${this.electionPath}/n-`,
          JSON.stringify({ candidate: this.#o.candidate ?? "" }),
          CreateMode.EPHEMERAL_SEQUENTIAL,
        );
        this.#candidate = { session: s, path };
      }
      const children = (await s.getChildren(this.electionPath)).sort();
      const mine = this.#candidate.path.slice(this.electionPath.length + 1);
      if (!children.includes(mine)) {
        // Our node is gone (session trouble): stand again on the next round.
        this.#candidate = null;
        this.#setLeader(false);
        return;
      }
      this.#setLeader(children[0] === mine);
    } catch (err) {
      log.debug("leader election round failed", { error: String(err) });
      this.#setLeader(false);
    }
  }

  /** The current session, for the readiness probe. */
  get session(): ZkSession | null {
    return this.#session;
  }

  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  /**
   * Reports instances that others registered under the base path to `sink`, from now on and
   * across sessions (see {@link ForeignWatch}).
   */
  watch(sink: ForeignSink): void {
    this.#foreign?.stop();
    this.#foreign = new ForeignWatch({
      base: this.#o.basePath === "/" ? "" : this.#o.basePath,
      ours: (service, id) => this.#live.has(`${service}/${id}`),
      sink,
      healthPath: this.#o.instanceHealthPath ?? "/actuator/health",
    });
    const s = this.#session;
    if (s?.connected) void this.#foreign.sync(s);
  }

  #path(service: string, id?: string): string {
    const base = this.#o.basePath === "/" ? "" : this.#o.basePath;
    return id === undefined ? `${base}/${service}` : `${base}/${service}/${id}`;
  }

  /** Opens a session in the background and keeps one open until `close()`. */
  start(): void {
    void this.#connect();
    this.#electionTimer = setInterval(() => {
      this.#watchdog();
      void this.#elect();
    }, ELECTION_POLL_MS);
  }

  /**
   * Curator's rule: disconnected longer than the session timeout counts as lost. The driver
   * itself waits forever on a server that accepts a connection and never answers the
   * handshake (seen with ZooKeeper 3.8 at startup), so we open a new session ourselves.
   */
  #watchdog(): void {
    const s = this.#session;
    if (!s || this.#closed) return;
    if (s.connected) {
      this.#disconnectedSince = Date.now();
      return;
    }
    if (Date.now() - this.#disconnectedSince > this.#o.sessionTimeoutMs) {
      log.warn("zookeeper session not connected for longer than its timeout; opening a new one");
      this.#disconnectedSince = Date.now();
      this.#setLeader(false);
      void this.#connect();
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    this.#session?.close();
    const s = new ZkSession(this.#o.hosts, {
      sessionTimeoutMs: this.#o.sessionTimeoutMs,
      connectTimeoutMs: this.#o.connectTimeoutMs,
    });
    this.#session = s;
    this.#disconnectedSince = Date.now();
    s.on("expired", () => {
      if (this.#session !== s) return;
      this.#setLeader(false);
      log.warn("zookeeper session expired; opening a new one and re-creating ephemerals");
      void this.#connect();
    });
    // A reconnect within the same session keeps its ephemerals, but znodes that failed to be
    // written while disconnected are written now.
    s.on("connected", () => {
      if (this.#session !== s) return;
      void this.#reapply(s);
      void this.#elect();
      void this.#foreign?.sync(s);
    });
    try {
      await s.connect();
      this.#reconnectDelay = 200;
      log.info("zookeeper session open", { session: s.sessionId });
    } catch (err) {
      if (this.#session !== s || this.#closed) return;
      log.warn("zookeeper connect failed; retrying", {
        error: String(err),
        retry_in_ms: this.#reconnectDelay,
      });
      s.close();
      this.#timer = setTimeout(() => void this.#connect(), this.#reconnectDelay);
      this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, 5_000);
    }
  }

  async #reapply(s: ZkSession): Promise<void> {
    const mine = [...this.#owned].map((k) => this.#live.get(k)).filter((i) => i !== undefined);
    for (const i of mine) {
      try {
        await this.#write(s, i);
      } catch (err) {
        log.warn("could not re-create an ephemeral", {
          service: i.service_name,
          instance: i.instance_id,
          error: String(err),
        });
      }
    }
  }

  /** Service parents known to exist (persistent nodes; they outlive sessions). */
  #parents = new Set<string>();

  async #write(s: ZkSession, i: Instance): Promise<void> {
    const path = this.#path(i.service_name, i.instance_id);
    const parent = this.#path(i.service_name);
    const data = curatorJson(i);
    if (!this.#parents.has(parent)) {
      await s.mkdirp(parent);
      this.#parents.add(parent);
    }
    // The common case first: a new instance is one round trip.
    try {
      await s.create(path, data, CreateMode.EPHEMERAL);
      return;
    } catch (err) {
      if (zkCode(err) === ZkCode.NO_NODE) {
        // The parent went away (deleted by hand): make it again.
        await s.mkdirp(parent);
        await s.create(path, data, CreateMode.EPHEMERAL);
        return;
      }
      if (zkCode(err) !== ZkCode.NODE_EXISTS) throw err;
    }
    const owner = await s.owner(path);
    if (owner === s.sessionId) {
      await s.setData(path, data);
      return;
    }
    // Someone else's instance (Curator, Spring) at this path: never ours to replace.
    if (await this.#theirs(s, i.service_name, i.instance_id)) {
      throw new ConflictError(
        `Instance ${i.instance_id} of ${i.service_name} is registered in ZooKeeper by another ` +
          "client; choose another instance_id",
      );
    }
    // Left by an older session of ours (e.g. before a restart): take it over.
    await s.remove(path);
    await s.create(path, data, CreateMode.EPHEMERAL);
  }

  /** Whether the znode of `service/id` holds another client's instance (not our format). */
  async #theirs(s: ZkSession, service: string, id: string): Promise<boolean> {
    const data = await s.getData(this.#path(service, id));
    return data !== null && classifyZnode(service, id, data, "").kind !== "ours";
  }

  #require(): ZkSession {
    const s = this.#session;
    if (!s || !s.connected) {
      throw new BackendUnavailableError("registry", "ZooKeeper is not connected");
    }
    return s;
  }

  /**
   * Records `i` and writes its znode.
   * @throws {BackendUnavailableError} when ZooKeeper is not connected (the record stays and
   *   is written on reconnect; the caller decides whether that is an acknowledgement).
   */
  async put(i: Instance): Promise<void> {
    this.#hold(i);
    try {
      await this.#write(this.#require(), i);
    } catch (err) {
      if (err instanceof BackendUnavailableError || err instanceof ConflictError) throw err;
      // Connection loss or session expiry mid-write: unavailable, not a server error.
      throw new BackendUnavailableError("registry", `ZooKeeper write failed: ${String(err)}`);
    }
  }

  /** Records `i` without requiring a connection (restored records, health updates). */
  async putLater(i: Instance): Promise<void> {
    this.#hold(i);
    const s = this.#session;
    if (s?.connected) await this.#write(s, i).catch(() => {});
  }

  /** Holds `i` as this replica's to write: now and on every (re)connect. */
  #hold(i: Instance): void {
    const key = `${i.service_name}/${i.instance_id}`;
    this.#live.set(key, i);
    this.#owned.add(key);
  }

  /** Knows of `i` (another replica's registration) without writing its znode. */
  hold(i: Instance): void {
    this.#live.set(`${i.service_name}/${i.instance_id}`, i);
  }

  /**
   * Writes `i`'s znode back if there is none (its owner's session ended); one that is there
   * (another replica wrote it back first) is left alone, so replicas never take it from each
   * other.
   */
  async recreate(i: Instance): Promise<void> {
    const key = `${i.service_name}/${i.instance_id}`;
    this.#live.set(key, i);
    const s = this.#session;
    if (!s?.connected) return;
    const parent = this.#path(i.service_name);
    try {
      await s.mkdirp(parent);
      await s.create(
        this.#path(i.service_name, i.instance_id),
        curatorJson(i),
        CreateMode.EPHEMERAL,
      );
      this.#owned.add(key);
      log.info("re-created the znode of a registered instance", {
        service: i.service_name,
        instance: i.instance_id,
      });
    } catch (err) {
      if (zkCode(err) !== ZkCode.NODE_EXISTS) {
        log.debug("could not re-create a znode", { key, error: String(err) });
      }
    }
  }

  /**
   * Forgets `service/id` (another replica removed it): its znode goes too if this session
   * wrote it back meanwhile.
   */
  async release(service: string, id: string): Promise<void> {
    const key = `${service}/${id}`;
    this.#live.delete(key);
    const owned = this.#owned.delete(key);
    const s = this.#session;
    if (!owned || !s?.connected) return;
    try {
      const path = this.#path(service, id);
      if (await s.owner(path) === s.sessionId) await s.remove(path);
    } catch (err) {
      log.debug("could not remove a released znode", { key, error: String(err) });
    }
  }

  /** Drops `service/id` from the records to re-apply, without touching ZooKeeper. */
  forget(service: string, id: string): void {
    this.#live.delete(`${service}/${id}`);
    this.#owned.delete(`${service}/${id}`);
    // A znode at that path that was not ours after all (a refused registration) is read now.
    this.#foreign?.rescan(service);
  }

  async remove(service: string, id: string): Promise<void> {
    this.#live.delete(`${service}/${id}`);
    this.#owned.delete(`${service}/${id}`);
    const s = this.#require();
    const path = this.#path(service, id);
    // Only our znode goes: another client may hold this path now (ours could not be written
    // back after a session expiry because theirs was there).
    const owner = await s.owner(path);
    if (owner !== null && owner !== s.sessionId && await this.#theirs(s, service, id)) {
      log.warn("not removing a znode another client registered at this path", { path });
      this.#foreign?.rescan(service);
      return;
    }
    await s.remove(path);
    await this.#dropIfEmpty(s, this.#path(service));
  }

  /**
   * Deletes a service parent that holds no instance any more, as ZooKeeper deletes an empty
   * container node (how Curator creates parents; our client library cannot create one), so
   * that an empty service does not stay in `getServices()`. ZooKeeper refuses to delete a
   * parent that still has children (others' instances included), and a replica writing an
   * instance into a parent deleted meanwhile makes it again (see #write).
   */
  async #dropIfEmpty(s: ZkSession, parent: string): Promise<void> {
    this.#parents.delete(parent);
    try {
      if ((await s.getChildren(parent)).length > 0) return;
      await s.remove(parent);
    } catch (err) {
      if (zkCode(err) !== ZkCode.NOT_EMPTY) {
        log.debug("could not remove an empty service parent", { parent, error: String(err) });
      }
    }
  }

  async live(service: string): Promise<string[]> {
    return (await this.#require().getChildren(this.#path(service))).sort();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#electionTimer);
    this.#setLeader(false);
    this.#foreign?.stop();
    // worker.terminate() would not end the session: close it, so ephemerals go at once.
    this.#session?.close();
    this.#session = null;
  }
}
