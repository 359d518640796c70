/**
 * The {@link ActorClient.start} calls waiting for a worker to be ready. Each one's timeout
 * counts from when the worker's module has loaded, not from the spawn: loading is the
 * runtime's work and takes what it takes.
 */
import { BackendUnavailableError } from "../lib/errors.ts";

interface Waiter {
  /** The module has loaded: the start timeout begins (only the first time). */
  loaded(): void;
  ready(): void;
  failed(reason: string): void;
}

export class StartWaiters {
  readonly #name: string;
  #waiters: Waiter[] = [];

  /** @param name the actor's name, for the error. */
  constructor(name: string) {
    this.#name = name;
  }

  /** Whether a start is waiting. */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /**
   * Resolves when {@link ready} is called; rejects when {@link failed} is, or `timeoutMs`
   * after {@link loaded} (at once when `loaded` is already true).
   * @throws {BackendUnavailableError} naming why the actor did not start.
   */
  wait(timeoutMs: number, loaded: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const fail = (reason: string) => {
        clearTimeout(timer);
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(
          new BackendUnavailableError(this.#name, `Actor ${this.#name} did not start: ${reason}`),
        );
      };
      const waiter: Waiter = {
        loaded: () => {
          // A worker restarted after a failed init loads again: the budget keeps running.
          timer ??= setTimeout(
            () => fail(`init did not finish within ${timeoutMs} ms of its module loading`),
            timeoutMs,
          );
        },
        ready: () => {
          clearTimeout(timer);
          resolve();
        },
        failed: fail,
      };
      this.#waiters.push(waiter);
      if (loaded) waiter.loaded();
    });
  }

  /** The worker's module has loaded: every waiter's timeout starts. */
  loaded(): void {
    for (const w of this.#waiters) w.loaded();
  }

  /** The worker is ready: every waiter resolves. */
  ready(): void {
    for (const w of this.#waiters.splice(0)) w.ready();
  }

  /** Every waiter rejects, naming `reason`. */
  failed(reason: string): void {
    for (const w of [...this.#waiters]) w.failed(reason);
  }
}
