/**
 * The ConfigActor's view of its store's health: every store call a request waits on goes
 * through {@link StoreGuard.run}, which bounds it, turns driver failures into 503s and
 * remembers the outcome, so cached answers can be marked stale while the store is failing.
 */
import { BackendUnavailableError, DomainError } from "../errors.ts";
import { log } from "../log.ts";
import { withinMs } from "../async.ts";

export class StoreGuard {
  readonly #timeoutMs: number;
  readonly #onFlip: (failing: boolean) => void;
  /** False until migrations ran: a store that is down at start is retried, not fatal. */
  #ready = false;
  /** The last store call (or tail) failed. */
  #failing = false;

  /**
   * @param timeoutMs bound on one store call, ms: below the actor call timeout, so callers
   *   get 503, not 504
   * @param onFlip called when the store starts or stops failing
   */
  constructor(timeoutMs: number, onFlip: (failing: boolean) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onFlip = onFlip;
  }

  /** Whether migrations ran: the store has answered since start. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Whether answers from cache should be marked stale: failing, or never reached. */
  get down(): boolean {
    return this.#failing || !this.#ready;
  }

  /** The store has been opened (migrated); from now on calls go through. */
  opened(): void {
    this.#ready = true;
  }

  /** Records the outcome of a store call made outside {@link run}. */
  report(failing: boolean): void {
    if (failing === this.#failing) return;
    this.#failing = failing;
    this.#onFlip(failing);
  }

  /**
   * Runs a store call, bounded by the timeout; outcomes feed {@link down}.
   * @throws {BackendUnavailableError} when the store is not open yet, fails or does not
   *   answer in time; domain errors (`NotFoundError`, `ConflictError`, …) pass through.
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#ready) {
      throw new BackendUnavailableError(
        "storage",
        "Configuration store unavailable: not reachable since start (retrying)",
      );
    }
    try {
      const out = await withinMs(fn, this.#timeoutMs);
      this.report(false);
      return out;
    } catch (err) {
      if (err instanceof DomainError) throw err;
      this.report(true);
      const msg = err instanceof Error ? err.message : String(err);
      log.warn("config store call failed", { error: msg });
      throw new BackendUnavailableError("storage", `Configuration store unavailable: ${msg}`);
    }
  }
}
