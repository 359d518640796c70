/** Main-thread client of the HealthActor. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { HealthCalls } from "./health_protocol.ts";

export class HealthClient extends ActorClient<HealthCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "health", url: new URL("./health_worker.ts", import.meta.url) });
  }
}
