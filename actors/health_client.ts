/** Main-thread client of the HealthActor. */
import { ActorClient, type ActorClientOptions } from "./actor_client.ts";
import type { HealthCalls, HealthEvent } from "./health_protocol.ts";

type Req<K extends keyof HealthCalls> = HealthCalls[K]["req"];

/** Main-thread client of the HealthActor: one typed method per message. */
export class HealthClient extends ActorClient<HealthCalls, HealthEvent> {
  constructor(opts: Omit<ActorClientOptions<HealthEvent>, "name" | "url">) {
    super({
      ...opts,
      name: "health",
      url: new URL("./health_worker.ts", import.meta.url),
      credentials: [],
    });
  }
  track(r: Req<"track">) {
    return this.call({ type: "track", ...r });
  }
  untrack(r: Req<"untrack">) {
    return this.call({ type: "untrack", ...r });
  }
  setActive(r: Req<"set_active">) {
    return this.call({ type: "set_active", ...r });
  }
  /** Manual checks can take the probe's retries and backoff: allow up to a minute. */
  checkNow(r: Req<"check_now">) {
    return this.call({ type: "check_now", ...r }, 60_000);
  }
}
