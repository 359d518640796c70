/** RegistryActor messages. Types only. */
import type { CommonCalls } from "./common_protocol.ts";

type NoFields = Record<never, never>;

export type RegistryCalls = CommonCalls & {
  /** Self-message: (re)open the ZooKeeper session. */
  connect: { req: NoFields; res: void };
};
