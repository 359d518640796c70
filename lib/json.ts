/**
 * Guards for JSON values from requests. `JSON.parse` takes any nesting, but what comes after
 * recurses — `JSON.stringify`, structured clone across the actors' postMessage, libraries
 * walking a value — and overflows the stack somewhere between one and a hundred thousand
 * levels: a RangeError (500) on the HTTP thread, or a worker that crashes while replying.
 * And numbers: `JSON.parse` turns every one into a double, so a value could be stored as
 * another number than the one sent ({@link readsBackAsWritten}).
 */

import type { FieldError } from "./errors.ts";

/** The deepest array/object nesting accepted in a request value. */
export const MAX_JSON_DEPTH = 128;

/**
 * Whether `value` nests arrays/objects deeper than `max` levels (a scalar is 0, `[]` is 1).
 * Iterative, so a hostile value cannot overflow the check itself.
 */
export function nestedDeeperThan(value: unknown, max = MAX_JSON_DEPTH): boolean {
  if (typeof value !== "object" || value === null) return false;
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof x === "object" && x !== null) stack.push([x, depth + 1]);
    }
  }
  return false;
}

/**
 * The fields of a JSON object body whose values nest deeper than `max` levels, as field
 * errors (`in: "body"`); a body that is not an object is checked whole, as `body`.
 */
export function deepFields(doc: unknown, max = MAX_JSON_DEPTH): FieldError[] {
  const deep = (field: string): FieldError => ({
    field,
    in: "body",
    message: `nests arrays and objects deeper than ${max} levels`,
  });
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return nestedDeeperThan(doc, max) ? [deep("body")] : [];
  }
  return Object.entries(doc).filter(([, v]) => nestedDeeperThan(v, max)).map(([k]) => deep(k));
}

/** A number literal of a JSON text that would not read back as written. */
export interface InexactNumber {
  /** Object keys and array indexes (as strings) from the document's root to the number. */
  path: string[];
  /** The literal as written. */
  source: string;
  /** The double `JSON.parse` makes of it. */
  value: number;
}

/**
 * Whether the JSON number literal `source` reads back as written from `value`, the double
 * `JSON.parse` makes of it: the shortest form of the double (`String(value)`, which is what
 * `JSON.stringify` writes) must be the same decimal number as the literal. Spelling may
 * change (`1.0` → `1`, `1E+3` → `1000`, `0.10` → `0.1`, `-0` → `0`), the number may not:
 * a literal beyond the double range (`1e400`), a nonzero one that becomes 0 (`1e-400`), an
 * integer a double cannot hold (`9007199254740993`, `12345678901234567890`) or more digits
 * than a double keeps (`0.1000000000000000000001`) does not read back as written. Integers
 * past 2^53 that a double holds exactly (`9007199254740994`) do.
 */
export function readsBackAsWritten(source: string, value: number): boolean {
  return Number.isFinite(value) && decimal(source) === decimal(String(value));
}

/**
 * A number literal as `<sign><significant digits>e<exponent of a leading "0.">`: `-12.50`
 * and `-1.25e1` are `-125e2`; zero of either sign is `0`. Loops, not regexps, strip the
 * zeros: a trailing-zeros regexp backtracks quadratically on a long run of inner zeros.
 */
function decimal(literal: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (m === null) return `not a number: ${literal}`;
  const all = m[2] + (m[3] ?? "");
  let start = 0;
  while (start < all.length && all.charCodeAt(start) === 48) start++;
  if (start === all.length) return "0";
  let end = all.length;
  while (all.charCodeAt(end - 1) === 48) end--;
  return `${m[1]}${all.slice(start, end)}e${m[2].length - start + Number(m[4] ?? 0)}`;
}

/**
 * A text matching neither cannot hold an inexact number: a literal without an exponent
 * and with at most 15 significant digits (a run of fewer than 16 digits and dots) is a
 * normal double that reads back as written. Two scans are cheaper than one alternation.
 */
const EXPONENT = /\d[eE]/;
const LONG_DIGITS = /[0-9.]{16}/;

/** `JSON.parse` with the reviver's third argument (source text access, V8 11.4+), which
 * TypeScript's lib does not declare yet. */
const parseWithSource = JSON.parse as (
  text: string,
  reviver: (this: object, key: string, value: unknown, context: { source?: string }) => unknown,
) => unknown;

/**
 * The number literals of the JSON `text` that would not read back as written
 * ({@link readsBackAsWritten}), in document order, at most `limit` of them. A text that
 * cannot hold one (no exponent, no run of 16 digits) is not parsed at all, so `[]` says
 * nothing about its syntax; otherwise it is parsed once more with a reviver (some 8x the
 * cost of a plain `JSON.parse`).
 * @throws {SyntaxError} when a text that is parsed is not JSON, as `JSON.parse` does.
 * @throws {RangeError} when it nests deeper than a reviver's recursion allows (thousands
 * of levels; see {@link deepFields} to name the field).
 */
export function inexactNumbers(text: string, limit = 20): InexactNumber[] {
  if (!EXPONENT.test(text) && !LONG_DIGITS.test(text)) return [];
  // The reviver runs children first; what it finds waits under its holder (the object or
  // array it is in) until that holder's own turn adds the holder's key to the paths.
  const pending = new Map<object, InexactNumber[]>();
  let count = 0;
  parseWithSource(text, function (key, value, context) {
    let found: InexactNumber[] | undefined;
    if (typeof value === "number") {
      if (count < limit && !readsBackAsWritten(context.source!, value)) {
        count++;
        found = [{ path: [], source: context.source!, value }];
      }
    } else if (typeof value === "object" && value !== null) {
      found = pending.get(value);
      pending.delete(value);
    }
    if (found === undefined) return value;
    for (const f of found) f.path.unshift(key);
    const siblings = pending.get(this);
    if (siblings === undefined) pending.set(this, found);
    else siblings.push(...found);
    return value;
  });
  // Left: the entries of JSON.parse's wrapper around the root, whose key is "".
  return [...pending.values()].flat().map((f) => ({ ...f, path: f.path.slice(1) }));
}

/**
 * Field errors (`in: "body"`) for the numbers of a JSON request body that would not read
 * back as written ({@link readsBackAsWritten}), each named by its path (`value.limits.max`,
 * `value.items.0`), at most `limit`, with what to do instead. `[]` for text that is not
 * JSON: the caller's own parser answers that. A body nested too deep to check (thousands of
 * levels) gets its {@link deepFields} instead.
 */
export function inexactNumberErrors(text: string, limit = 20): FieldError[] {
  let found: InexactNumber[];
  try {
    found = inexactNumbers(text, limit);
  } catch (err) {
    if (err instanceof SyntaxError) return [];
    const deep = err instanceof RangeError ? deepFields(JSON.parse(text)) : [];
    if (deep.length === 0) throw err;
    return deep;
  }
  return found.map((f) => {
    const literal = f.source.length > 40 ? `${f.source.slice(0, 40)}…` : f.source;
    return {
      field: f.path.length > 0 ? f.path.join(".") : "body",
      in: "body",
      message: Number.isFinite(f.value)
        ? `is ${literal}, which would be stored as ${f.value}; send it as a string to keep ` +
          "every digit"
        : `is ${literal}, outside the range a number is stored in (it would be stored as ` +
          "null); send it as a string to keep it",
    };
  });
}

/**
 * The members of JSON `text` whose name repeats an earlier one of the same object, by path
 * (`value.a`): `JSON.parse` keeps the last and drops the rest without a word. At most
 * `limit`. Text that is not JSON gives whatever was seen before the error.
 */
export function duplicateKeys(text: string, limit = 20): FieldError[] {
  const out: FieldError[] = [];
  // One frame per open object or array: the names seen (objects), its own name in its parent
  // (built into a path only for what is reported: a copy per frame grew as depth squared).
  interface Frame {
    names: Set<string> | null;
    seg: string;
    parent: Frame | null;
    index: number;
    depth: number;
  }
  const pathOf = (f: Frame | null, name: string): string => {
    const segs = [name];
    for (let x = f; x !== null && x.parent !== null; x = x.parent) segs.unshift(x.seg);
    return segs.join(".");
  };
  let top = null as Frame | null;
  let pendingName = "";
  let i = 0;
  while (i < text.length && out.length < limit) {
    const ch = text[i];
    if (ch === '"') {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
      let j = i;
      while (" \n\r\t".includes(text[j] ?? "x")) j++;
      // A string in an object, followed by ':', is a member name.
      if (top?.names && text[j] === ":") {
        let name: string;
        try {
          name = JSON.parse(text.slice(start, i));
        } catch {
          return out;
        }
        if (top.names.has(name)) {
          out.push({
            field: pathOf(top, name),
            in: "body",
            message: "repeats a member name of the same object; only one can be stored",
          });
        }
        top.names.add(name);
        pendingName = name;
      }
      continue;
    }
    if (ch === "{" || ch === "[") {
      const depth: number = (top?.depth ?? 0) + 1;
      // Deeper than any value may nest: refused for its depth, whatever its names.
      if (depth > MAX_JSON_DEPTH + 1) return out;
      const seg: string = top === null ? "" : top.names ? pendingName : String(top.index);
      top = { names: ch === "{" ? new Set() : null, seg, parent: top, index: 0, depth };
    } else if (ch === "}" || ch === "]") {
      top = top?.parent ?? null;
    } else if (ch === "," && top && !top.names) {
      top.index++;
    }
    i++;
  }
  return out;
}
