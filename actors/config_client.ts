/** Main-thread client of the ConfigActor: one typed method per message. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type {
  ConfigCalls,
  ConfigEvent,
  GetReply,
  ListReply,
  WriteReply,
} from "./config_protocol.ts";
import type { EntryId } from "../lib/config/model.ts";
import { NearCache } from "../lib/near_cache.ts";
import { FRESH_MS } from "../lib/config/model.ts";

type Req<K extends keyof ConfigCalls> = ConfigCalls[K]["req"];

/** Near-cache group of a GET: every scope of one key, forgotten together. */
const group = (environment: string, key: string) => `${environment}\u0000${key}`;

export class ConfigClient extends ActorClient<ConfigCalls, ConfigEvent> {
  readonly near: NearCache<GetReply>;
  #storeFailing = false;
  /** When the actor's last successful tail round began (Date.now()): see FRESH_MS. */
  #tailedAt = 0;
  /** See {@link changeIndex}. */
  #index = 0;

  constructor(opts: Omit<ActorClientOptions<ConfigEvent>, "name" | "url">) {
    const s = opts.settings;
    const near = new NearCache<GetReply>(
      Math.min(s.CONFIG_NEAR_CACHE_ENTRIES, s.CONFIG_CACHE_MAX_ENTRIES),
    );
    super({
      ...opts,
      name: "config",
      url: new URL("./config_worker.ts", import.meta.url),
      credentials: ["CONFIG_ENCRYPTION_KEY", "REDIS_PASSWORD", "DATABASE_URL"],
      onEvent: (e) => {
        if (e.type === "config_changes") {
          for (const c of e.changes) {
            near.forget(group(c.environment, c.key));
            this.#saw(c.seq);
          }
        } else if (e.type === "config_tailed") {
          this.#tailedAt = e.at;
        } else if (e.type === "config_store") {
          this.#storeFailing = e.failing;
          near.clear();
        }
        opts.onEvent?.(e);
      },
    });
    this.near = near;
  }

  /**
   * The change index this process hands out (`X-Config-Index`, where a watch without
   * `Last-Event-ID` starts): the highest change sequence it knows committed, from write
   * replies, change events, list and index replies. Only moves forward. The one owner of the
   * index on this thread: a write is counted before its caller hears back, so an index
   * handed out after a write was acknowledged is never older than the write.
   */
  get changeIndex(): number {
    return this.#index;
  }

  #saw(seq: number): void {
    if (seq > this.#index) this.#index = seq;
  }

  /** Starts the worker and reads its change index. */
  override async start(timeoutMs?: number): Promise<void> {
    await super.start(timeoutMs);
    await this.index();
  }

  protected override onSpawn(): void {
    // Changes committed while no worker was listening were never reported to us.
    this.near?.clear();
  }

  status() {
    return this.call({ type: "status" });
  }

  /** A GET answer without the worker hop, when the main thread holds a current one. */
  getNear(id: EntryId): GetReply | undefined {
    // Past FRESH_MS since the actor last caught up with other replicas (it was paused, or
    // is starved), the actor answers: it tails first.
    const r = this.#storeFailing || Date.now() - this.#tailedAt >= FRESH_MS
      ? undefined
      : this.near.get(group(id.environment, id.key), id.service);
    if (r) this.nearHits++;
    else this.nearMisses++;
    return r;
  }
  /** Reads answered by {@link getNear}, and those it sent on to the actor (for /metrics). */
  nearHits = 0;
  nearMisses = 0;

  /** A secret's value in clear; never kept on this thread. */
  reveal(r: Req<"reveal">): Promise<GetReply> {
    return this.call({ type: "reveal", ...r });
  }
  async get(r: Req<"get">): Promise<GetReply> {
    const epoch = this.near.epoch;
    const res = await this.call({ type: "get", ...r });
    if (!res.stale) this.near.set(group(r.id.environment, r.id.key), r.id.service, res, epoch);
    return res;
  }

  /** Forgets the written id before the writer hears back, so it reads its own write. */
  async #written(id: EntryId, p: Promise<WriteReply>): Promise<WriteReply> {
    try {
      const res = await p;
      this.#saw(res.seq);
      return res;
    } finally {
      this.near.forget(group(id.environment, id.key));
    }
  }
  /** `signal`: the request's; when the client hangs up, the actor skips the work. */
  bulk(r: Req<"bulk">, signal?: AbortSignal) {
    return this.call({ type: "bulk", ...r }, { signal });
  }
  /**
   * `signal`: the request's; when the client hangs up, the actor skips the work. The reply's
   * `index` is {@link changeIndex} as of the answer: never older than a write acknowledged
   * before it, nor than a change already sent to watchers.
   */
  async list(r: Req<"list">, signal?: AbortSignal): Promise<ListReply> {
    const res = await this.call({ type: "list", ...r }, { signal });
    this.#saw(res.index);
    return { body: res.body, index: this.#index };
  }
  create(r: Req<"create">) {
    return this.#written(r.id, this.call({ type: "create", ...r }));
  }
  update(r: Req<"update">) {
    return this.#written(r.id, this.call({ type: "update", ...r }));
  }
  delete(r: Req<"delete">) {
    return this.#written(r.id, this.call({ type: "delete", ...r }));
  }
  rollback(r: Req<"rollback">) {
    return this.#written(r.id, this.call({ type: "rollback", ...r }));
  }
  /** `signal`: the request's; when the client hangs up, the actor skips the work. */
  history(r: Req<"history">, signal?: AbortSignal) {
    return this.call({ type: "history", ...r }, { signal });
  }
  changes(r: Req<"changes">, signal?: AbortSignal) {
    return this.call({ type: "changes", ...r }, { signal });
  }
  /** Asks the actor for its change index; resolves {@link changeIndex} after it. */
  async index(): Promise<number> {
    this.#saw(await this.call({ type: "index" }));
    return this.#index;
  }
  outbox() {
    return this.call({ type: "outbox" });
  }
}
