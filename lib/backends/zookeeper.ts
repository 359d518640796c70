/**
 * ZooKeeper through `npm:node-zookeeper-client`, wrapped in promises. Znode data must be a
 * Node `Buffer`: a `Uint8Array` is silently dropped by the client.
 */
import { Buffer } from "node:buffer";
// @ts-types="npm:@types/node-zookeeper-client@^1.1.0"
import zookeeper from "node-zookeeper-client";
import type { BackendProbe } from "../backend.ts";

export const CreateMode = zookeeper.CreateMode;
export type ZkEvent = "connected" | "disconnected" | "expired" | "authenticationFailed";

export interface ZkOptions {
  /** Session timeout in ms. */
  sessionTimeoutMs: number;
  /** How long {@link ZkSession.connect} waits, in ms. */
  connectTimeoutMs: number;
}

/** ZooKeeper error codes that callers branch on. */
export const ZkCode = {
  NO_NODE: zookeeper.Exception.NO_NODE,
  NODE_EXISTS: zookeeper.Exception.NODE_EXISTS,
  NOT_EMPTY: zookeeper.Exception.NOT_EMPTY,
} as const;

/** The code of a ZooKeeper exception, or undefined for any other error. */
export function zkCode(err: unknown): number | undefined {
  const c = (err as { getCode?: () => number })?.getCode?.();
  return typeof c === "number" ? c : undefined;
}

/** What a one-shot watch reports: the node changed, its children changed, or it went. */
export type ZkWatchEvent = "created" | "deleted" | "data" | "children";

function watchEvent(e: zookeeper.Event): ZkWatchEvent {
  switch (e.getType()) {
    case zookeeper.Event.NODE_CREATED:
      return "created";
    case zookeeper.Event.NODE_DELETED:
      return "deleted";
    case zookeeper.Event.NODE_DATA_CHANGED:
      return "data";
    default:
      return "children";
  }
}

/** One ZooKeeper session. After `expired` it is dead: make a new one. */
export class ZkSession {
  readonly #client: zookeeper.Client;
  readonly #opts: ZkOptions;
  #closed = false;

  constructor(hosts: string, opts: ZkOptions) {
    this.#opts = opts;
    this.#client = zookeeper.createClient(hosts, {
      sessionTimeout: opts.sessionTimeoutMs,
      spinDelay: 200,
      retries: 0,
    });
  }

  /** Subscribes to session state changes. */
  on(event: ZkEvent, fn: () => void): void {
    this.#client.on(event, fn);
  }

  /** The server-assigned session id as hex (empty before connecting). */
  get sessionId(): string {
    const id = this.#client.getSessionId();
    return id ? Buffer.from(id).toString("hex") : "";
  }

  get connected(): boolean {
    const s = this.#client.getState();
    return s === zookeeper.State.SYNC_CONNECTED || s === zookeeper.State.CONNECTED_READ_ONLY;
  }

  /**
   * Opens the session.
   * @throws {Error} when no server answers within `connectTimeoutMs`.
   */
  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error(`ZooKeeper: no connection within ${this.#opts.connectTimeoutMs} ms`));
      }, this.#opts.connectTimeoutMs);
      this.#client.once("connected", () => {
        clearTimeout(t);
        resolve();
      });
      this.#client.connect();
    });
  }

  #cb<T>(fn: (done: (err: unknown, v?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      fn((err, v) => err ? reject(err) : resolve(v as T));
    });
  }

  /** Creates `path` and its missing parents as persistent nodes. */
  mkdirp(path: string): Promise<string> {
    return this.#cb((d) => this.#client.mkdirp(path, (e, p) => d(e, p)));
  }

  /** Creates one node; `data` is JSON-encoded text. Returns the created path. */
  create(path: string, data: string, mode: number = CreateMode.PERSISTENT): Promise<string> {
    return this.#cb((d) =>
      this.#client.create(path, Buffer.from(data, "utf8"), mode, (e, p) => d(e, p))
    );
  }

  setData(path: string, data: string, version = -1): Promise<void> {
    return this.#cb((d) =>
      this.#client.setData(path, Buffer.from(data, "utf8"), version, (e) => d(e))
    );
  }

  /** Node data as text, or null when the node does not exist. */
  async getData(path: string): Promise<string | null> {
    try {
      const buf = await this.#cb<Buffer | undefined>((d) =>
        this.#client.getData(path, (e, data) => d(e, data))
      );
      return buf ? buf.toString("utf8") : "";
    } catch (err) {
      if (zkCode(err) === ZkCode.NO_NODE) return null;
      throw err;
    }
  }

  /** Child names, or [] when the node does not exist. */
  async getChildren(path: string): Promise<string[]> {
    try {
      return await this.#cb<string[]>((d) =>
        this.#client.getChildren(path, (e, children) => d(e, children))
      );
    } catch (err) {
      if (zkCode(err) === ZkCode.NO_NODE) return [];
      throw err;
    }
  }

  /**
   * Child names, leaving a one-shot watch that calls `onEvent` once when the children change
   * or the node goes; null (and no watch) when the node does not exist.
   */
  async watchChildren(path: string, onEvent: (e: ZkWatchEvent) => void): Promise<string[] | null> {
    try {
      return await this.#cb<string[]>((d) =>
        this.#client.getChildren(path, (e) => onEvent(watchEvent(e)), (e, c) => d(e, c))
      );
    } catch (err) {
      if (zkCode(err) === ZkCode.NO_NODE) return null;
      throw err;
    }
  }

  /**
   * Node data as text, leaving a one-shot watch that calls `onEvent` once when the data
   * changes or the node goes; null (and no watch) when the node does not exist.
   */
  async watchData(path: string, onEvent: (e: ZkWatchEvent) => void): Promise<string | null> {
    try {
      const buf = await this.#cb<Buffer | undefined>((d) =>
        this.#client.getData(path, (e) => onEvent(watchEvent(e)), (e, data) => d(e, data))
      );
      return buf ? buf.toString("utf8") : "";
    } catch (err) {
      if (zkCode(err) === ZkCode.NO_NODE) return null;
      throw err;
    }
  }

  /** The node's ephemeral owner session (hex), "" for persistent nodes, null if absent. */
  async owner(path: string): Promise<string | null> {
    const stat = await this.#cb<zookeeper.Stat | null>((d) =>
      this.#client.exists(path, (e, s) => d(e, s))
    );
    if (!stat) return null;
    const hex = Buffer.from(stat.ephemeralOwner).toString("hex");
    return /^0+$/.test(hex) ? "" : hex;
  }

  async exists(path: string): Promise<boolean> {
    return (await this.owner(path)) !== null;
  }

  /** Removes a node; absent is fine. */
  async remove(path: string): Promise<void> {
    try {
      await this.#cb((d) => this.#client.remove(path, -1, (e) => d(e)));
    } catch (err) {
      if (zkCode(err) !== ZkCode.NO_NODE) throw err;
    }
  }

  /** Ends the session: its ephemeral nodes disappear at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }
}

export function zookeeperProbe(session: () => ZkSession | null): BackendProbe {
  return {
    name: "registry",
    kind: "zookeeper",
    async check() {
      const s = session();
      if (!s || !s.connected) throw new Error("no ZooKeeper session");
      await s.exists("/");
    },
  };
}
