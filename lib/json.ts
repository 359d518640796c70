/**
 * Guards for JSON values from requests. `JSON.parse` takes any nesting, but what comes after
 * recurses — `JSON.stringify`, structured clone across the actors' postMessage, libraries
 * walking a value — and overflows the stack somewhere between one and a hundred thousand
 * levels: a RangeError (500) on the HTTP thread, or a worker that crashes while replying.
 */

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
