/**
 * The live view of registered instances. ZooKeeper (ephemeral znodes owned by this
 * replica's session, leader election) when configured, else the in-process view of one
 * process (always the leader). The durable records stay the source of truth either way.
 */
import type { Instance } from "./model.ts";
import type { ForeignSink } from "./zookeeper_watch.ts";

export interface RegistryBackend {
  readonly kind: "zookeeper" | "embedded";
  /** Whether this replica leads health checking. */
  readonly leader: boolean;
  /** Connects (in the background) and takes part in leadership. */
  start(): void;
  /**
   * Makes `i` live; resolves once it is.
   * @throws {BackendUnavailableError} when the live view cannot be written now.
   */
  put(i: Instance): Promise<void>;
  /** Records `i` to be live when possible, without requiring it now (restores, updates). */
  putLater(i: Instance): Promise<void>;
  remove(service: string, id: string): Promise<void>;
  /** Drops `service/id` from what is re-applied, without touching the live view. */
  forget(service: string, id: string): void;
  /** Knows of `i`, registered through another replica, without writing it to the live view. */
  hold(i: Instance): void;
  /** Forgets `service/id`, removed through another replica (and what this replica wrote of it). */
  release(service: string, id: string): Promise<void>;
  /** Writes `i` back to the live view if it is not there (ZooKeeper: its owner's session ended). */
  recreate?(i: Instance): Promise<void>;
  /** Instance ids of a service in the live view. */
  live(service: string): Promise<string[]>;
  /**
   * Reports instances that others registered in the live view (ZooKeeper: Curator, Spring
   * Cloud Zookeeper) to `sink`, as they come, change and go. Absent for the embedded view,
   * which only holds ours.
   */
  watch?(sink: ForeignSink): void;
  close(): void;
}

/** One process's live view: the registrations it holds. */
export class EmbeddedRegistry implements RegistryBackend {
  readonly kind = "embedded";
  readonly leader = true;
  readonly #live = new Map<string, Map<string, Instance>>();
  readonly #onLeadership?: (leader: boolean) => void;

  constructor(opts: { onLeadership?: (leader: boolean) => void } = {}) {
    this.#onLeadership = opts.onLeadership;
  }

  start(): void {
    this.#onLeadership?.(true);
  }

  put(i: Instance): Promise<void> {
    let m = this.#live.get(i.service_name);
    if (!m) this.#live.set(i.service_name, m = new Map());
    m.set(i.instance_id, i);
    return Promise.resolve();
  }

  putLater(i: Instance): Promise<void> {
    return this.put(i);
  }

  remove(service: string, id: string): Promise<void> {
    this.forget(service, id);
    return Promise.resolve();
  }

  hold(i: Instance): void {
    void this.put(i);
  }

  release(service: string, id: string): Promise<void> {
    return this.remove(service, id);
  }

  forget(service: string, id: string): void {
    const m = this.#live.get(service);
    m?.delete(id);
    if (m?.size === 0) this.#live.delete(service);
  }

  live(service: string): Promise<string[]> {
    return Promise.resolve([...(this.#live.get(service)?.keys() ?? [])].sort());
  }

  close(): void {
    this.#live.clear();
  }
}
