/**
 * The live view in ZooKeeper: one ephemeral znode per registered instance at
 * `base/{service}/{instance}`, holding Curator's ServiceInstance JSON, owned by this actor's
 * session. The local map of registrations is the truth and is re-applied on every
 * (re)connect and after session expiry (Curator's pattern); a znode left by an older
 * session (this service before a restart) is taken over.
 */
import { CreateMode, ZkCode, zkCode, ZkSession } from "../backends/zookeeper.ts";
import { BackendUnavailableError } from "../errors.ts";
import { log } from "../log.ts";
import { curatorJson, type Instance } from "./model.ts";

export interface ZkRegistryOptions {
  hosts: string;
  basePath: string;
  sessionTimeoutMs: number;
  connectTimeoutMs: number;
}

export class ZookeeperRegistry {
  readonly #o: ZkRegistryOptions;
  #session: ZkSession | null = null;
  #live = new Map<string, Instance>();
  #closed = false;
  #reconnectDelay = 200;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(o: ZkRegistryOptions) {
    this.#o = o;
  }

  /** The current session, for the readiness probe. */
  get session(): ZkSession | null {
    return this.#session;
  }

  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  #path(service: string, id?: string): string {
    const base = this.#o.basePath === "/" ? "" : this.#o.basePath;
    return id === undefined ? `${base}/${service}` : `${base}/${service}/${id}`;
  }

  /** Opens a session in the background and keeps one open until `close()`. */
  start(): void {
    void this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    this.#session?.close();
    const s = new ZkSession(this.#o.hosts, {
      sessionTimeoutMs: this.#o.sessionTimeoutMs,
      connectTimeoutMs: this.#o.connectTimeoutMs,
    });
    this.#session = s;
    s.on("expired", () => {
      if (this.#session !== s) return;
      log.warn("zookeeper session expired; opening a new one and re-creating ephemerals");
      void this.#connect();
    });
    // A reconnect within the same session keeps its ephemerals, but znodes that failed to be
    // written while disconnected are written now.
    s.on("connected", () => {
      if (this.#session === s) void this.#reapply(s);
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
    for (const i of [...this.#live.values()]) {
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

  async #write(s: ZkSession, i: Instance): Promise<void> {
    const path = this.#path(i.service_name, i.instance_id);
    const data = curatorJson(i);
    await s.mkdirp(this.#path(i.service_name));
    const owner = await s.owner(path);
    if (owner === s.sessionId) {
      await s.setData(path, data);
      return;
    }
    // Absent, or left by an older session of ours (e.g. before a restart): take it over.
    if (owner !== null) await s.remove(path);
    try {
      await s.create(path, data, CreateMode.EPHEMERAL);
    } catch (err) {
      if (zkCode(err) !== ZkCode.NODE_EXISTS) throw err;
      await s.remove(path);
      await s.create(path, data, CreateMode.EPHEMERAL);
    }
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
    this.#live.set(`${i.service_name}/${i.instance_id}`, i);
    await this.#write(this.#require(), i);
  }

  /** Records `i` without requiring a connection (restored records, health updates). */
  async putLater(i: Instance): Promise<void> {
    this.#live.set(`${i.service_name}/${i.instance_id}`, i);
    const s = this.#session;
    if (s?.connected) await this.#write(s, i).catch(() => {});
  }

  async remove(service: string, id: string): Promise<void> {
    this.#live.delete(`${service}/${id}`);
    await this.#require().remove(this.#path(service, id));
  }

  /** Znode names under a service (for tests and diagnostics). */
  async children(service: string): Promise<string[]> {
    return await this.#require().getChildren(this.#path(service));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    // worker.terminate() would not end the session: close it, so ephemerals go at once.
    this.#session?.close();
    this.#session = null;
  }
}
