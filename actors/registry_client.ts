/** Main-thread client of the RegistryActor: one typed method per message. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { RegistryCalls, RegistryEvent } from "./registry_protocol.ts";
import { NearCache } from "../lib/near_cache.ts";

type Req<K extends keyof RegistryCalls> = RegistryCalls[K]["req"];

/** Services whose answers are kept on the HTTP thread at most. */
const NEAR_SERVICES = 2_000;

/** Main-thread client of the RegistryActor, with a near cache of its service answers. */
export class RegistryClient extends ActorClient<RegistryCalls, RegistryEvent> {
  /** Ready `{service_name, instances}` answers by service; member "all" or "healthy". */
  readonly near = new NearCache<string>(NEAR_SERVICES * 2);

  constructor(opts: Omit<ActorClientOptions<RegistryEvent>, "name" | "url">) {
    super({
      ...opts,
      name: "registry",
      url: new URL("./registry_worker.ts", import.meta.url),
      credentials: ["DATABASE_URL"],
      onEvent: (e) => {
        if (e.type === "registry_services_changed") {
          for (const s of e.services) this.near.forget(s);
        }
        opts.onEvent?.(e);
      },
    });
  }

  protected override onSpawn(): void {
    // Changes made while no worker was reporting were never seen here.
    this.near?.clear();
  }

  /** A service's answer without the worker hop, when the HTTP thread holds a current one. */
  answerNear(service: string, healthyOnly: boolean): string | undefined {
    return this.near.get(service, healthyOnly ? "healthy" : "all");
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
  reannounce() {
    return this.call({ type: "reannounce" });
  }
  async answer(r: Req<"answer">): Promise<string> {
    const epoch = this.near.epoch;
    const body = await this.call({ type: "answer", ...r });
    this.near.set(r.service, r.healthy_only ? "healthy" : "all", body, epoch);
    return body;
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
