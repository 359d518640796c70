/** What the routes need of an actor client, so tests can hand in any actor. */
import type { BackendStatus } from "../actors/protocol.ts";

export interface ActorHandle {
  readonly name: string;
  /** Worker up and initialised. */
  readonly ready: boolean;
  readonly restarts: number;
  readonly queueDepth: number;
  /** Last backend states the actor reported. */
  readonly backends: BackendStatus[];
  /** Round trip to the actor. */
  ping(): Promise<unknown>;
}
