/**
 * Unleash's Frontend API over one environment's definitions: the Unleash context a browser
 * or mobile SDK sends (query or body), and every flag enabled for it with its variant, in the
 * shape Unleash answers (`{toggles: [{name, enabled, variant, impressionData}]}`). Pure: the
 * HTTP thread runs it over the snapshot the FlagActor publishes.
 */
import type { Context, FlagSet, Payload } from "./engine.ts";
import { sha256Hex } from "./digest.ts";

/** Context fields Unleash keeps at the root; any other member is a property. */
const ROOT_FIELDS = new Set(["appName", "userId", "sessionId", "remoteAddress"]);

/** Longest context value kept, in characters: a context is small, and is never stored. */
const MAX_VALUE = 1024;

function scalar(v: unknown): string | undefined {
  // Repeated query parameters arrive as a list: the first wins, as in Hono's `query()`.
  const x = Array.isArray(v) ? v[0] : v;
  if (x === null || x === undefined || typeof x === "object") return undefined;
  return String(x).slice(0, MAX_VALUE);
}

/**
 * The Unleash context of a Frontend API request, as Unleash builds it: `userId`,
 * `sessionId`, `remoteAddress`, `appName` and `currentTime` at the root, `properties` merged
 * with every other member (the SDK sends `properties[region]=eu` in a query, and Unleash takes
 * `region=eu` too). `environment` is always `env`: the environment the token or request
 * chose, never the one the SDK puts in its context.
 * @param raw the query parameters (`properties[x]` keys included) or the body's `context`
 */
export function frontendContext(raw: Record<string, unknown>, env: string): Context {
  const ctx: Context = { environment: env };
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === "environment") continue;
    if (k === "properties") {
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        for (const [pk, pv] of Object.entries(v)) {
          const s = scalar(pv);
          if (s !== undefined) properties[pk] = s;
        }
      }
      continue;
    }
    const bracket = /^properties\[([^\]]+)\]$/.exec(k);
    const s = scalar(v);
    if (s === undefined) continue;
    if (bracket) properties[bracket[1]] = s;
    else if (k === "currentTime") {
      const d = new Date(s);
      // Unleash ignores a time it cannot read; so does the engine with none.
      if (!Number.isNaN(d.getTime())) ctx.currentTime = d;
    } else if (ROOT_FIELDS.has(k)) ctx[k] = s;
    else properties[k] = s;
  }
  if (Object.keys(properties).length > 0) ctx.properties = properties;
  return ctx;
}

/** One flag of a Frontend API answer. */
export interface FrontendToggle {
  name: string;
  enabled: true;
  variant: {
    name: string;
    enabled: boolean;
    payload?: Payload;
    feature_enabled: true;
    featureEnabled: true;
  };
  impressionData: boolean;
}

/**
 * Every flag of `set` enabled for `ctx`, each with the variant Unleash's `getVariant` selects
 * (`{name: "disabled", enabled: false}` when none), in definition order. Disabled flags are
 * left out, as Unleash leaves them out.
 */
export function frontendToggles(set: FlagSet, ctx: Context): FrontendToggle[] {
  const out: FrontendToggle[] = [];
  for (const f of set.features.values()) {
    const e = set.evaluate(f.name, ctx);
    if (!e.enabled) continue;
    out.push({
      name: f.name,
      enabled: true,
      variant: {
        name: e.variant.name,
        enabled: e.variant.enabled,
        ...(e.variant.payload ? { payload: e.variant.payload } : {}),
        // Unleash sends both spellings: SDKs read either.
        feature_enabled: true,
        featureEnabled: true,
      },
      impressionData: f.impressionData === true,
    });
  }
  return out;
}

/** A Frontend API answer: its JSON text and weak ETag (Unleash sends a weak one too). */
export async function frontendAnswer(
  set: FlagSet,
  ctx: Context,
): Promise<{ body: string; etag: string }> {
  const body = JSON.stringify({ toggles: frontendToggles(set, ctx) });
  return { body, etag: `W/"${(await sha256Hex(body)).slice(0, 32)}"` };
}
