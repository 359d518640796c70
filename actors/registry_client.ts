/** Main-thread client of the RegistryActor. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { RegistryCalls } from "./registry_protocol.ts";

export class RegistryClient extends ActorClient<RegistryCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "registry", url: new URL("./registry_worker.ts", import.meta.url) });
  }
  status() {
    return this.call({ type: "status" });
  }
}
