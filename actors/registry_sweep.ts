/**
 * The registry's sweep: marks instances whose heartbeat TTL passed unhealthy and removes those
 * unhealthy longer than SERVICE_DEREGISTER_AFTER; nothing disappears silently otherwise. Only
 * instances due for one of those are queued (a plain pass over the index: with 10,000
 * instances, queueing each one every second cost the worker ~27 ms of CPU per second); each is
 * re-read in its own mailbox queue, after the changes to it already queued, and (records shared
 * with other replicas) from the store, which may hold a heartbeat another replica took.
 */
import type { Instance } from "../lib/registry/model.ts";
import type { InstanceIndex } from "../lib/registry/instances.ts";
import { sweepAction } from "../lib/registry/registration.ts";
import type { Settings } from "../lib/settings.ts";
import type { InstanceRef } from "./registry_protocol.ts";
import { log } from "../lib/log.ts";

export interface SweepDeps {
  index: InstanceIndex;
  settings: Settings;
  signal: AbortSignal;
  /** Runs `fn` in the mailbox queue of instance `service/id`. */
  exclusive(service: string, id: string, fn: () => Promise<void>): Promise<void>;
  /** The instance as it stands now (undefined: gone). */
  refresh(service: string, id: string): Promise<Instance | undefined>;
  /** Marks `i` unhealthy for a missed heartbeat. */
  missed(i: Instance): Promise<unknown>;
  /** Removes an instance unhealthy for too long. */
  expire(ref: InstanceRef): Promise<void>;
}

/** One sweep over the instances due for an action. */
export async function sweepDue(d: SweepDeps): Promise<void> {
  const after = d.settings.SERVICE_DEREGISTER_AFTER * 1000;
  const now = Date.now();
  const due = d.index.all().filter((i) => sweepAction(i, now, after) !== null);
  await Promise.all(due.map((i) => {
    const { service_name: service, instance_id: id } = i;
    return d.exclusive(service, id, () => sweepOne(d, service, id)).catch((err) => {
      log.warn("registry sweep failed for an instance", {
        service,
        instance: id,
        error: String(err),
      });
    });
  }));
}

async function sweepOne(d: SweepDeps, service: string, id: string): Promise<void> {
  let i = d.index.get(service, id);
  if (!i || d.signal.aborted) return;
  if (!i.source) {
    i = await d.refresh(service, id);
    if (!i) return;
  }
  switch (sweepAction(i, Date.now(), d.settings.SERVICE_DEREGISTER_AFTER * 1000)) {
    case "missed":
      log.warn("instance missed its heartbeat", { service, instance: id });
      await d.missed(i);
      return;
    case "expire":
      await d.expire({ service, id });
  }
}
