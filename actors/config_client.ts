/** Main-thread client of the ConfigActor: one typed method per message. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { ConfigCalls } from "./config_protocol.ts";

type Req<K extends keyof ConfigCalls> = ConfigCalls[K]["req"];

export class ConfigClient extends ActorClient<ConfigCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "config", url: new URL("./config_worker.ts", import.meta.url) });
  }
  status() {
    return this.call({ type: "status" });
  }
  get(r: Req<"get">) {
    return this.call({ type: "get", ...r });
  }
  bulk(r: Req<"bulk">) {
    return this.call({ type: "bulk", ...r });
  }
  list(r: Req<"list">) {
    return this.call({ type: "list", ...r });
  }
  create(r: Req<"create">) {
    return this.call({ type: "create", ...r });
  }
  update(r: Req<"update">) {
    return this.call({ type: "update", ...r });
  }
  delete(r: Req<"delete">) {
    return this.call({ type: "delete", ...r });
  }
  rollback(r: Req<"rollback">) {
    return this.call({ type: "rollback", ...r });
  }
  history(r: Req<"history">) {
    return this.call({ type: "history", ...r });
  }
  changes(r: Req<"changes">) {
    return this.call({ type: "changes", ...r });
  }
  index() {
    return this.call({ type: "index" });
  }
  outbox() {
    return this.call({ type: "outbox" });
  }
}
