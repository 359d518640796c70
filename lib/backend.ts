/**
 * A backend's readiness probe, and the loop that turns probes into {@link BackendStatus}
 * reports for `/health`.
 */
import type { BackendStatus } from "../actors/protocol.ts";

/** One backend connection as seen by the actor that owns it. */
export interface BackendProbe {
  /** Concern: storage, cache, registry, events, flags. */
  readonly name: string;
  /** Implementation, e.g. `postgres`. */
  readonly kind: string;
  /** Resolves when the backend answers; rejects (or is aborted) otherwise. */
  check(signal: AbortSignal): Promise<void>;
  /** Extra facts for the report, e.g. the registry's leader role. */
  describe?(): Partial<BackendStatus>;
}

/** Removes credentials from URLs inside an error message. */
export function redact(text: string): string {
  return text.replace(/(\w+:\/\/)[^/@\s]*@/g, "$1***@");
}

/**
 * Runs every probe concurrently, each bounded by `timeoutMs`, and reports their states.
 * Never throws.
 */
export async function probeAll(
  probes: readonly BackendProbe[],
  timeoutMs = 2_000,
): Promise<BackendStatus[]> {
  return await Promise.all(probes.map(async (p): Promise<BackendStatus> => {
    const t0 = performance.now();
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        p.check(ctl.signal),
        new Promise((_, reject) => {
          timer = setTimeout(() => {
            ctl.abort();
            reject(new Error(`no answer within ${timeoutMs} ms`));
          }, timeoutMs);
        }),
      ]);
      return {
        name: p.name,
        kind: p.kind,
        status: "up",
        latency_ms: Math.round((performance.now() - t0) * 100) / 100,
        checked_at: new Date().toISOString(),
        ...p.describe?.(),
      };
    } catch (err) {
      return {
        name: p.name,
        kind: p.kind,
        status: "down",
        error: redact(err instanceof Error ? err.message : String(err)),
        checked_at: new Date().toISOString(),
        ...p.describe?.(),
      };
    } finally {
      clearTimeout(timer);
    }
  }));
}

/** A concern that is not configured: reported, never probed. */
export function disabledStatus(name: string, kind: string): BackendStatus {
  return { name, kind, status: "disabled" };
}
