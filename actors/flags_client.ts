/** Main-thread client of the FlagActor: one typed method per message. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { FlagCalls } from "./flags_protocol.ts";

type Req<K extends keyof FlagCalls> = FlagCalls[K]["req"];

export class FlagClient extends ActorClient<FlagCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({
      ...opts,
      name: "flags",
      url: new URL("./flags_worker.ts", import.meta.url),
      credentials: ["REDIS_PASSWORD", "DATABASE_URL", "UNLEASH_API_TOKEN", "UNLEASH_CLIENT_TOKENS"],
    });
  }
  status() {
    return this.call({ type: "status" });
  }
  evaluate(r: Req<"evaluate">) {
    return this.call({ type: "evaluate", ...r });
  }
  ofrep(r: Req<"ofrep">) {
    return this.call({ type: "ofrep", ...r });
  }
  list(r: Req<"list">) {
    return this.call({ type: "list", ...r });
  }
  get(r: Req<"get">) {
    return this.call({ type: "get", ...r });
  }
  sync(r: Req<"sync">) {
    return this.call({ type: "sync", ...r });
  }
}
