/**
 * The registry's in-memory view of its records: instances by service, each service's list
 * sorted by id and its ready JSON answers, built on demand and dropped when the service
 * changes. Pure: no I/O.
 */
import { NotFoundError } from "../errors.ts";
import { discoverView, type Instance, instanceView } from "./model.ts";

/** Instances by service and id, with per-service answers cached until the service changes. */
export class InstanceIndex {
  readonly #services = new Map<string, Map<string, Instance>>();
  readonly #sorted = new Map<string, Instance[]>();
  readonly #answers = new Map<string, string>();
  readonly #onChange: (service: string) => void;

  /** @param onChange called with the service of every change (set or delete). */
  constructor(onChange: (service: string) => void = () => {}) {
    this.#onChange = onChange;
  }

  /** The instance `id` of `service`, or undefined. */
  get(service: string, id: string): Instance | undefined {
    return this.#services.get(service)?.get(id);
  }

  /** Inserts or replaces `i`. */
  set(i: Instance): void {
    let m = this.#services.get(i.service_name);
    if (!m) this.#services.set(i.service_name, m = new Map());
    m.set(i.instance_id, i);
    this.#changed(i.service_name);
  }

  /** Removes `service/id` (nothing when absent, but the service still counts as changed). */
  delete(service: string, id: string): void {
    const m = this.#services.get(service);
    m?.delete(id);
    if (m?.size === 0) this.#services.delete(service);
    this.#changed(service);
  }

  /** Every instance, service by service. */
  all(): Instance[] {
    return [...this.#services.values()].flatMap((m) => [...m.values()]);
  }

  /** How many instances there are of each status and source (`api` or `zookeeper`). */
  counts(): { status: string; source: string; value: number }[] {
    const by = new Map<string, { status: string; source: string; value: number }>();
    for (const m of this.#services.values()) {
      for (const i of m.values()) {
        const source = i.source ?? "api";
        const key = `${i.status}/${source}`;
        const b = by.get(key);
        if (b) b.value++;
        else by.set(key, { status: i.status, source, value: 1 });
      }
    }
    return [...by.values()];
  }

  /** A service's instances sorted by id; empty when it has none. */
  byService(service: string): Instance[] {
    let list = this.#sorted.get(service);
    if (!list) {
      list = [...(this.#services.get(service)?.values() ?? [])]
        .sort((a, b) => a.instance_id.localeCompare(b.instance_id));
      this.#sorted.set(service, list);
    }
    return list;
  }

  /**
   * The JSON answer `{service_name, instances}` of a service (when `healthyOnly`, the healthy
   * instances as `discover` shows them), built once per change.
   * @throws {NotFoundError} when the service has no instance.
   */
  answer(service: string, healthyOnly: boolean): string {
    const key = `${service}\u0000${healthyOnly ? "healthy" : "all"}`;
    let body = this.#answers.get(key);
    if (body === undefined) {
      const list = this.byService(service);
      if (list.length === 0) throw new NotFoundError(`No service ${service} is registered`);
      body = JSON.stringify({
        service_name: service,
        instances: healthyOnly
          ? list.filter((i) => i.status === "healthy").map(discoverView)
          : list.map(instanceView),
      });
      this.#answers.set(key, body);
    }
    return body;
  }

  #changed(service: string): void {
    this.#sorted.delete(service);
    this.#answers.delete(`${service}\u0000all`);
    this.#answers.delete(`${service}\u0000healthy`);
    this.#onChange(service);
  }
}
