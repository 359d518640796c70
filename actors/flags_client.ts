/** Main-thread client of the FlagActor. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { FlagCalls } from "./flags_protocol.ts";

export class FlagClient extends ActorClient<FlagCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "flags", url: new URL("./flags_worker.ts", import.meta.url) });
  }
  status() {
    return this.call({ type: "status" });
  }
}
