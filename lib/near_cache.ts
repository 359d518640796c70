/**
 * A small cache on the HTTP thread of answers an actor gave, so hot reads skip the worker
 * hop. Answers are grouped (a group is forgotten as a whole when the actor reports a change
 * to it) and bounded, least recently stored out. An answer requested before any forget is
 * not stored (epoch check), so a late reply never brings an old value back.
 *
 * Used for configuration GETs (group: environment + key, member: service scope — a
 * service's answer may be the global entry) and registry answers (group: service).
 */
export class NearCache<V> {
  readonly #max: number;
  #groups = new Map<string, Map<string, V>>();
  #size = 0;
  /** Bumped by every forget. */
  epoch = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#size;
  }

  get(group: string, member: string): V | undefined {
    return this.#groups.get(group)?.get(member);
  }

  /** Stores an answer requested at `epoch`, unless something was forgotten since. */
  set(group: string, member: string, value: V, epoch: number): void {
    if (this.#max === 0 || epoch !== this.epoch) return;
    let g = this.#groups.get(group);
    if (g) this.#groups.delete(group);
    else g = new Map();
    // Re-inserted last: the Map's order is the eviction order.
    this.#groups.set(group, g);
    if (!g.has(member)) this.#size++;
    g.set(member, value);
    while (this.#size > this.#max) {
      const [oldest, og] = this.#groups.entries().next().value!;
      this.#groups.delete(oldest);
      this.#size -= og.size;
    }
  }

  forget(group: string): void {
    this.epoch++;
    const g = this.#groups.get(group);
    if (!g) return;
    this.#size -= g.size;
    this.#groups.delete(group);
  }

  clear(): void {
    this.epoch++;
    this.#groups.clear();
    this.#size = 0;
  }
}
