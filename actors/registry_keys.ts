/** The RegistryActor's mailbox keys: which instance a message changes. */
import type { MessageOf } from "./protocol.ts";
import type { RegistryCalls } from "./registry_protocol.ts";
import { registrationId } from "../lib/registry/registration.ts";

/** The mailbox key of one instance. */
export function instanceKey(service: string, id: string): string {
  return `instance:${service}/${id}`;
}

/**
 * The instance a message changes, as its mailbox key; undefined for reads, probes and the
 * sweep (which takes each instance's key itself). A registration is keyed by the instance id
 * it will get; one whose id cannot be computed is refused by its handler before it changes
 * anything, so it needs no key.
 */
export function entityOf(msg: MessageOf<RegistryCalls>): string | undefined {
  switch (msg.type) {
    case "register":
      try {
        return instanceKey(msg.input.service_name, registrationId(msg.input));
      } catch {
        return undefined;
      }
    case "deregister":
    case "heartbeat":
    case "health_result":
      return instanceKey(msg.service, msg.id);
    default:
      return undefined;
  }
}
