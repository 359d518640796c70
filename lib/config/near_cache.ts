/**
 * The main thread's small cache of GET answers for hot keys, in front of the ConfigActor:
 * a hit answers without the worker hop. It only ever holds what the actor answered, and
 * forgets an (environment, key) — every scope, since a service's answer may be the global
 * entry — when the actor reports a committed change to it, when this process's own write
 * is acknowledged, and whenever the actor restarts or its store fails. An answer that was
 * requested before such a forget is not stored (epoch check), so a late reply never
 * brings an old value back.
 */
import type { GetReply } from "../../actors/config_protocol.ts";

export class NearCache {
  readonly #max: number;
  /** `environment\0key` → service ("" for none) → answer. */
  #groups = new Map<string, Map<string, GetReply>>();
  #size = 0;
  /** Bumped by every forget. */
  epoch = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#size;
  }

  get(environment: string, service: string, key: string): GetReply | undefined {
    const g = this.#groups.get(`${environment}\u0000${key}`);
    return g?.get(service);
  }

  /** Stores an answer requested at `epoch`, unless something was forgotten since. */
  set(environment: string, service: string, key: string, reply: GetReply, epoch: number): void {
    if (this.#max === 0 || epoch !== this.epoch) return;
    const gk = `${environment}\u0000${key}`;
    let g = this.#groups.get(gk);
    if (g) this.#groups.delete(gk);
    else g = new Map();
    // Re-inserted last: the Map's order is the eviction order.
    this.#groups.set(gk, g);
    if (!g.has(service)) this.#size++;
    g.set(service, reply);
    while (this.#size > this.#max) {
      const [oldest, og] = this.#groups.entries().next().value!;
      this.#groups.delete(oldest);
      this.#size -= og.size;
    }
  }

  forget(environment: string, key: string): void {
    this.epoch++;
    const gk = `${environment}\u0000${key}`;
    const g = this.#groups.get(gk);
    if (!g) return;
    this.#size -= g.size;
    this.#groups.delete(gk);
  }

  clear(): void {
    this.epoch++;
    this.#groups.clear();
    this.#size = 0;
  }
}
