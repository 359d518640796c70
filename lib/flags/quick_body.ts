/**
 * The evaluation bodies nearly every request sends, checked by hand: zod's safeParse cost
 * more than evaluating the flag (~3 µs of ~6 for one flag, ~10 µs for a bulk of 20; bench/).
 * Each function answers exactly what the zod schema of `api.ts` would give for the body, or
 * null for anything it is not sure of; null sends the body through zod, which accepts it or
 * names what is wrong. tests/flags_quick_body_test.ts holds the two equal over random bodies.
 */
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../json.ts";
import type { FlagType } from "./provider.ts";

/** What `EvaluateBody` / `BooleanBody` give (BooleanBody has no `type`). */
export interface EvaluateData {
  flag_name: string;
  user_id?: string;
  context?: Record<string, string | number | boolean | null>;
  default_value?: unknown;
  type?: FlagType;
  environment?: string;
}

/** What `BulkBody` gives. */
export interface BulkData {
  flags: { flag_name: string; default_value?: unknown; type?: FlagType }[];
  user_id?: string;
  context?: Record<string, string | number | boolean | null>;
  environment?: string;
}

const TYPES = new Set(["boolean", "string", "number", "integer", "float", "object"]);
const NO = Symbol("no");
type No = typeof NO;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * Whether every field of `o` outside `known` is a scalar. zod drops unknown fields, but the
 * whole body's depth is checked before zod sees it: a deep unknown field is zod's path's to
 * refuse.
 */
function othersFlat(o: Record<string, unknown>, known: Set<string>): boolean {
  for (const k in o) {
    if (known.has(k)) continue;
    const v = o[k];
    if (typeof v === "object" && v !== null) return false;
  }
  return true;
}

const EVALUATE_FIELDS = new Set([
  "flag_name",
  "user_id",
  "context",
  "default_value",
  "type",
  "environment",
]);
const BULK_FIELDS = new Set(["flags", "user_id", "context", "environment"]);
const BULK_ITEM_FIELDS = new Set(["flag_name", "default_value", "type"]);

const flagName = (v: unknown): string | No =>
  typeof v === "string" && v.length >= 1 && v.length <= 255 ? v : NO;

function userId(v: unknown): string | undefined | No {
  if (v === undefined) return undefined;
  if (typeof v === "string") return v.length <= 256 ? v : NO;
  return typeof v === "number" && Number.isFinite(v) ? String(v) : NO;
}

const environment = (v: unknown): string | undefined | No =>
  v === undefined ? undefined : typeof v === "string" && v.length <= 64 ? v : NO;

const flagType = (v: unknown): FlagType | undefined | No =>
  v === undefined ? undefined : typeof v === "string" && TYPES.has(v) ? v as FlagType : NO;

/** A context of at most 64 fields, names ≤ 128, values short strings, numbers, booleans or null. */
function context(v: unknown): EvaluateData["context"] | No {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) return NO;
  let n = 0;
  for (const k in v) {
    if (++n > 64 || k.length > 128 || k === "__proto__") return NO;
    const x = v[k];
    if (typeof x === "string") {
      if (x.length > 1024) return NO;
    } else if (typeof x !== "boolean" && x !== null && !(typeof x === "number" && isFinite(x))) {
      return NO;
    }
  }
  return v as EvaluateData["context"];
}

/**
 * A default value of any JSON type that keeps the whole body within {@link MAX_JSON_DEPTH}
 * levels, it being `above` levels down.
 */
const defaultValue = (v: unknown, above: number): unknown | No =>
  typeof v === "object" && v !== null && nestedDeeperThan(v, MAX_JSON_DEPTH - above) ? NO : v;

/**
 * `EvaluateBody` (op `evaluate`) or `BooleanBody` (op `boolean`) of a parsed JSON document,
 * or null when zod must decide. Unknown fields are dropped, as zod drops them.
 */
export function quickEvaluateBody(raw: unknown, op: "evaluate" | "boolean"): EvaluateData | null {
  if (!isPlainObject(raw) || !othersFlat(raw, EVALUATE_FIELDS)) return null;
  const name = flagName(raw.flag_name);
  const uid = userId(raw.user_id);
  const ctx = context(raw.context);
  const env = environment(raw.environment);
  const type = op === "evaluate" ? flagType(raw.type) : undefined;
  const def = op === "boolean"
    ? (raw.default_value === undefined || typeof raw.default_value === "boolean"
      ? raw.default_value
      : NO)
    : defaultValue(raw.default_value, 1);
  if (name === NO || uid === NO || ctx === NO || env === NO || type === NO || def === NO) {
    return null;
  }
  const out: EvaluateData = { flag_name: name };
  if (uid !== undefined) out.user_id = uid;
  if (ctx !== undefined) out.context = ctx;
  if (def !== undefined) out.default_value = def;
  if (type !== undefined) out.type = type;
  if (env !== undefined) out.environment = env;
  return out;
}

/** `BulkBody` of a parsed JSON document, or null when zod must decide. */
export function quickBulkBody(raw: unknown): BulkData | null {
  if (!isPlainObject(raw) || !Array.isArray(raw.flags) || !othersFlat(raw, BULK_FIELDS)) {
    return null;
  }
  const list = raw.flags;
  if (list.length < 1 || list.length > 200) return null;
  const flags: BulkData["flags"] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const f = list[i];
    if (!isPlainObject(f) || !othersFlat(f, BULK_ITEM_FIELDS)) return null;
    const name = flagName(f.flag_name);
    const type = flagType(f.type);
    // The body, `flags` and the item are three levels above an item's default.
    const def = defaultValue(f.default_value, 3);
    if (name === NO || type === NO || def === NO) return null;
    const item: BulkData["flags"][number] = { flag_name: name };
    if (def !== undefined) item.default_value = def;
    if (type !== undefined) item.type = type;
    flags[i] = item;
  }
  const uid = userId(raw.user_id);
  const ctx = context(raw.context);
  const env = environment(raw.environment);
  if (uid === NO || ctx === NO || env === NO) return null;
  const out: BulkData = { flags };
  if (uid !== undefined) out.user_id = uid;
  if (ctx !== undefined) out.context = ctx;
  if (env !== undefined) out.environment = env;
  return out;
}
