/**
 * An actor's mailbox: one queue per entity (xstate's mailbox, per entity instead of per actor,
 * so reads and other entities' changes are not held up behind one slow write). Work given the
 * same key runs one at a time, in the order it was given, each after the previous one's promise
 * settled. The map holds only entities with work pending.
 */
export class Mailbox {
  #tails = new Map<string, Promise<void>>();

  /** How many entities have work queued or running. */
  get busy(): number {
    return this.#tails.size;
  }

  /**
   * Runs `fn` after all work queued under `key` before it; at once (synchronously, no
   * microtask) when there is none.
   * @returns `fn`'s result; a throw becomes a rejection and does not stop the queue.
   */
  run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.#tails.get(key);
    let out: Promise<T>;
    if (prev) out = prev.then(fn);
    else {
      try {
        out = Promise.resolve(fn());
      } catch (err) {
        out = Promise.reject(err);
      }
    }
    const tail = out.then(noop, noop);
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return out;
  }
}

const noop = () => {};
