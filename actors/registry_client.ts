/** Main-thread client of the RegistryActor: one typed method per message. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { RegistryCalls } from "./registry_protocol.ts";

type Req<K extends keyof RegistryCalls> = RegistryCalls[K]["req"];

export class RegistryClient extends ActorClient<RegistryCalls> {
  constructor(opts: Omit<ActorClientOptions, "name" | "url">) {
    super({ ...opts, name: "registry", url: new URL("./registry_worker.ts", import.meta.url) });
  }
  status() {
    return this.call({ type: "status" });
  }
  register(r: Req<"register">) {
    return this.call({ type: "register", ...r });
  }
  deregister(r: Req<"deregister">) {
    return this.call({ type: "deregister", ...r });
  }
  heartbeat(r: Req<"heartbeat">) {
    return this.call({ type: "heartbeat", ...r });
  }
  all() {
    return this.call({ type: "all" });
  }
  answer(r: Req<"answer">) {
    return this.call({ type: "answer", ...r });
  }
  instances(r: Req<"instances">) {
    return this.call({ type: "instances", ...r });
  }
  pick(r: Req<"pick">) {
    return this.call({ type: "pick", ...r });
  }
  healthResult(r: Req<"health_result">) {
    return this.call({ type: "health_result", ...r });
  }
}
