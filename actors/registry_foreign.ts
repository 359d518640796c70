/**
 * The RegistryActor's side of instances that others registered in ZooKeeper (Curator, Spring
 * Cloud Zookeeper): the live view reports them as they come, change and go; each change runs
 * in that instance's mailbox queue and updates the in-memory index only (never the store,
 * never their znode), announcing health targets and publishing registry events like ours.
 */
import type { InstanceIndex } from "../lib/registry/instances.ts";
import type { Instance } from "../lib/registry/model.ts";
import type { ForeignSink } from "../lib/registry/zookeeper_watch.ts";
import { foreignNext } from "../lib/registry/foreign.ts";
import type { InstanceRef } from "./registry_protocol.ts";
import { ConflictError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";

/** What {@link ForeignInstances} works with: the actor's index, queues and outputs. */
export interface ForeignDeps {
  /** Runs `fn` in the mailbox queue of instance `service/id` (the actor's). */
  exclusive(service: string, id: string, fn: () => void | Promise<void>): Promise<void>;
  index: InstanceIndex;
  /** Health targets added (or changed) and removed. */
  announce(added: Instance[], removed: InstanceRef[]): void;
  /** A registry event (REGISTRY_KAFKA_TOPIC). */
  publish(type: string, i: Instance, reason?: string): void;
  /** The znode of a registration of ours (or a peer replica's) went; runs in its queue. */
  vanished(service: string, id: string): Promise<void>;
}

/** Applies what the ZooKeeper watch reports to the registry's index. */
export class ForeignInstances implements ForeignSink {
  readonly #d: ForeignDeps;

  constructor(d: ForeignDeps) {
    this.#d = d;
  }

  upsert(i: Instance): void {
    this.#queue(i.service_name, i.instance_id, () => this.#upsert(i));
  }

  remove(service: string, id: string): void {
    this.#queue(service, id, () => this.#remove(service, id));
  }

  vanished(service: string, id: string): void {
    this.#queue(service, id, () => this.#d.vanished(service, id));
  }

  #queue(service: string, id: string, fn: () => void | Promise<void>): void {
    this.#d.exclusive(service, id, fn).catch((err) => {
      log.warn("could not apply a ZooKeeper instance change", {
        service,
        instance: id,
        error: String(err),
      });
    });
  }

  #upsert(f: Instance): void {
    const { index } = this.#d;
    const prev = index.get(f.service_name, f.instance_id);
    if (prev && !prev.source) return; // ours: its znode is ours too, never foreign
    const { next, retarget } = foreignNext(prev, f, new Date().toISOString());
    if (prev && next.status !== prev.status) {
      log.info("instance health changed", {
        service: f.service_name,
        instance: f.instance_id,
        from: prev.status,
        to: next.status,
        reason: f.disabled ? "taken out of service by its owner" : "back in service",
      });
      if (next.status !== "registered") this.#d.publish(next.status, next);
    }
    index.set(next);
    if (retarget) this.#d.announce([next], []);
    if (!prev) {
      this.#d.publish("registered", next);
      log.info("instance found in ZooKeeper", {
        service: f.service_name,
        instance: f.instance_id,
        url: f.service_url,
      });
    }
  }

  #remove(service: string, id: string): void {
    const prev = this.#d.index.get(service, id);
    if (!prev?.source) return;
    this.#d.index.delete(service, id);
    this.#d.announce([], [{ service, id }]);
    this.#d.publish("deregistered", prev, "its znode was removed");
    log.info("instance left ZooKeeper", { service, instance: id });
  }
}

/** The 409 for changing through the API an instance that another client registered. */
export function foreignConflict(i: Instance, what: string): ConflictError {
  return new ConflictError(
    `Instance ${i.instance_id} of ${i.service_name} was registered in ZooKeeper by another ` +
      `client (Curator, Spring Cloud Zookeeper); config-service never modifies it: ${what} ` +
      "through that client",
  );
}
