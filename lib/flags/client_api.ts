/**
 * Unleash's Client API over the definitions we hold: an environment's client-API document
 * with its ETag, and the usage backend SDKs report (`/api/client/register`, `metrics`). No
 * actor or HTTP dependency: the FlagActor owns one {@link ClientUsage}.
 */
import type { FlagSet } from "./engine.ts";
import type { MetricsBucket } from "./sources.ts";
import type { Collected } from "../metrics.ts";
import { sha256Hex } from "./digest.ts";

/** A client-API document as served: its JSON text and strong ETag. */
export interface ClientDocument {
  body: string;
  etag: string;
}

/** A set's document, built once per set: sets are never changed once built. */
const documents = new WeakMap<FlagSet, Promise<ClientDocument>>();

/**
 * `set`'s client-API JSON (`{version, features, segments}`) and its ETag, the digest of that
 * text: any change to the definitions changes it.
 */
export function clientDocument(set: FlagSet): Promise<ClientDocument> {
  let d = documents.get(set);
  if (!d) {
    const body = JSON.stringify(set.toDocument());
    d = sha256Hex(body).then((h) => ({ body, etag: `"${h.slice(0, 32)}"` }));
    documents.set(set, d);
  }
  return d;
}

/** Whether `If-None-Match` (a list, weak or strong, or `*`) names `etag`. */
export function notModified(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  return ifNoneMatch.split(",").some((t) => {
    const v = t.trim();
    return v === "*" || v.replace(/^W\//, "") === etag;
  });
}

/** Most SDK instances remembered per environment (for the gauge): bounds memory. */
const MAX_INSTANCES = 10_000;

/**
 * What backend SDKs report: their instances (register and metrics calls) and their
 * `yes`/`no` counts per flag. Counts of flags the environment does not define are dropped,
 * so a client cannot grow `/metrics` with names of its own.
 */
export class ClientUsage {
  readonly #forward: boolean;
  readonly #instances = new Map<string, Set<string>>();
  readonly #totals = new Map<string, { env: string; flag: string; yes: number; no: number }>();
  #pending = new Map<string, MetricsBucket["toggles"]>();

  /** @param opts.forward whether counts are kept for {@link drainInto} (usage sent to Unleash) */
  constructor(opts: { forward: boolean }) {
    this.#forward = opts.forward;
  }

  /**
   * Records a report of instance `instance` in `env`; with `toggles` (a metrics call), adds
   * the counts of the flags `known` holds.
   */
  record(
    env: string,
    instance: string,
    toggles: MetricsBucket["toggles"] | null,
    known: ReadonlyMap<string, unknown>,
  ): void {
    let seen = this.#instances.get(env);
    if (!seen) this.#instances.set(env, seen = new Set());
    if (seen.size < MAX_INSTANCES) seen.add(instance);
    if (!toggles) return;
    let pending = this.#pending.get(env);
    for (const [flag, t] of Object.entries(toggles)) {
      if (!known.has(flag)) continue;
      const key = `${env}\0${flag}`;
      const total = this.#totals.get(key) ?? { env, flag, yes: 0, no: 0 };
      total.yes += t.yes;
      total.no += t.no;
      this.#totals.set(key, total);
      if (!this.#forward) continue;
      if (!pending) this.#pending.set(env, pending = {});
      const p = pending[flag] ??= { yes: 0, no: 0, variants: {} };
      p.yes += t.yes;
      p.no += t.no;
      for (const [v, n] of Object.entries(t.variants ?? {})) {
        p.variants[v] = (p.variants[v] ?? 0) + n;
      }
    }
  }

  /** Adds the counts reported since the last call into `into` (the usage sent to Unleash). */
  drainInto(into: Map<string, MetricsBucket["toggles"]>): void {
    for (const [env, toggles] of this.#pending) {
      const out = into.get(env) ?? {};
      into.set(env, out);
      for (const [flag, t] of Object.entries(toggles)) {
        const o = out[flag] ??= { yes: 0, no: 0, variants: {} };
        o.yes += t.yes;
        o.no += t.no;
        for (const [v, n] of Object.entries(t.variants)) o.variants[v] = (o.variants[v] ?? 0) + n;
      }
    }
    this.#pending = new Map();
  }

  /** `/metrics` families: SDK-reported answers per flag, SDK instances per environment. */
  metrics(): Collected[] {
    return [
      {
        name: "flag_sdk_answers_total",
        help: "Answers Unleash SDKs reported through /api/client/metrics, by flag",
        type: "counter",
        samples: [...this.#totals.values()].flatMap((t) => [
          { labels: { environment: t.env, flag: t.flag, answer: "yes" }, value: t.yes },
          { labels: { environment: t.env, flag: t.flag, answer: "no" }, value: t.no },
        ]),
      },
      {
        name: "flag_sdk_instances",
        help: "Unleash SDK instances seen through /api/client (at most 10000 per environment)",
        type: "gauge",
        samples: [...this.#instances].map(([environment, s]) => ({
          labels: { environment },
          value: s.size,
        })),
      },
    ];
  }
}
