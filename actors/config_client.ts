/** Main-thread client of the ConfigActor. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { ConfigCalls } from "./config_protocol.ts";

export class ConfigClient extends ActorClient<ConfigCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "config", url: new URL("./config_worker.ts", import.meta.url) });
  }
  status() {
    return this.call({ type: "status" });
  }
}
