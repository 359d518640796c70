/**
 * Spring's view of configuration values: JSON values flattened to Spring property names
 * the way Spring flattens YAML (`YamlProcessor.buildFlattenedMap`), and the merged
 * properties of an Environment written back as `.properties`, JSON or YAML documents, as
 * Spring Cloud Config Server's `EnvironmentController` answers its file forms.
 */

/** One of an Environment's `propertySources`. */
export interface PropertySource {
  name: string;
  source: Record<string, unknown>;
}

/**
 * Adds `value`, flattened under `key`, to `into`: objects by `.name`, arrays by `[i]`,
 * scalars as they are. As Spring reads YAML: `null` and an empty list become `""`, and an
 * empty object adds nothing.
 */
export function flattenEntry(into: Record<string, unknown>, key: string, value: unknown): void {
  if (Array.isArray(value)) {
    if (value.length === 0) into[key] = "";
    else value.forEach((v, i) => flattenEntry(into, `${key}[${i}]`, v));
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      flattenEntry(into, k.startsWith("[") ? `${key}${k}` : `${key}.${k}`, v);
    }
  } else {
    into[key] = value === null ? "" : value;
  }
}

/**
 * The merged properties of an Environment's file forms, as Spring Cloud Config Server's
 * `EnvironmentController.convertToProperties` merges them: sources from the lowest
 * priority up, a later value replacing an earlier one in its place, except lists: a source
 * that has any `name[i]` replaces every `name[…]` property of the sources below it (a list
 * of one over a list of three is a list of one), and lists come after the other names.
 */
export function mergedProperties(sources: PropertySource[]): Map<string, unknown> {
  const combined = new Map<string, unknown>();
  const lists = new Map<string, Map<string, unknown>>();
  for (const s of [...sources].reverse()) {
    const keys = Object.keys(s.source);
    for (const key of keys) {
      const bracket = key.indexOf("[");
      if (bracket < 0) {
        combined.set(key, s.source[key]);
        continue;
      }
      const root = key.slice(0, bracket);
      const items = new Map<string, unknown>();
      for (const k of keys) if (k.startsWith(`${root}[`)) items.set(k, s.source[k]);
      lists.set(root, items);
    }
  }
  for (const items of lists.values()) for (const [k, v] of items) combined.set(k, v);
  return combined;
}

/** `name: value` lines in merge order, as Spring's `.properties` form answers (no escaping). */
export function toProperties(props: Map<string, unknown>): string {
  return [...props].map(([k, v]) => `${k}: ${String(v)}`).join("\n");
}

type Tree = { [k: string]: Tree | unknown } | unknown[];

/**
 * Flat Spring property names back to nested objects and arrays (`a.b[0].c`), as Spring's
 * JSON and YAML forms answer. A name that cannot nest under one already set as a scalar
 * keeps its flat name.
 */
export function toTree(props: Map<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [name, value] of props) {
    const path = pathOf(name);
    let node: Tree = root;
    let ok = true;
    for (let i = 0; i < path.length - 1 && ok; i++) {
      const step = path[i];
      const wantArray = typeof path[i + 1] === "number";
      const here = (node as Record<string | number, unknown>)[step];
      if (here === undefined) {
        const made: Tree = wantArray ? [] : {};
        (node as Record<string | number, unknown>)[step] = made;
        node = made;
      } else if (typeof here === "object" && here !== null && Array.isArray(here) === wantArray) {
        node = here as Tree;
      } else ok = false;
    }
    if (!ok) {
      root[name] = value;
      continue;
    }
    const last = path[path.length - 1];
    (node as Record<string | number, unknown>)[last] = value;
  }
  return root;
}

/** `a.b[0].c` → `["a", "b", 0, "c"]`. */
function pathOf(name: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of name.split(".")) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1] !== "") out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/**
 * A YAML document of a JSON tree in the block style Spring's server writes (SnakeYAML's):
 * a list under a key is not indented, a map in a list starts on the dash's line, and a
 * string is single-quoted when plain it would read as something else.
 */
export function toYaml(tree: Record<string, unknown>): string {
  const lines: string[] = [];
  const nonEmpty = (v: unknown): v is Record<string, unknown> | unknown[] =>
    v !== null && typeof v === "object" && Object.keys(v).length > 0;
  const map = (m: Record<string, unknown>, indent: string) => {
    for (const [k, v] of Object.entries(m)) {
      if (nonEmpty(v)) {
        lines.push(`${indent}${yamlString(k)}:`);
        if (Array.isArray(v)) list(v, indent);
        else map(v, `${indent}  `);
      } else lines.push(`${indent}${yamlString(k)}: ${yamlScalar(v)}`);
    }
  };
  const list = (l: unknown[], indent: string) => {
    for (const x of l) {
      if (nonEmpty(x) && !Array.isArray(x)) {
        const at = lines.length;
        map(x, `${indent}  `);
        lines[at] = `${indent}- ${lines[at].slice(indent.length + 2)}`;
      } else if (nonEmpty(x)) {
        lines.push(`${indent}-`);
        list(x as unknown[], `${indent}  `);
      } else lines.push(`${indent}- ${yamlScalar(x)}`);
    }
  };
  map(tree, "");
  return lines.length === 0 ? "{}\n" : `${lines.join("\n")}\n`;
}

function yamlScalar(v: unknown): string {
  if (Array.isArray(v)) return "[]";
  if (v !== null && typeof v === "object") return "{}";
  if (typeof v === "string") return yamlString(v);
  return v === null || v === undefined ? "null" : String(v);
}

/** A string plain when YAML reads it back as that string, else single-quoted. */
function yamlString(s: string): string {
  const plain = s !== "" && !/^[\s\-?:,\[\]{}#&*!|>'"%@`]/.test(s) && !/\s$/.test(s) &&
    !/: |:$| #/.test(s) && ![...s].some((ch) => ch < " " || ch === "\x7f") &&
    !/^(~|null|true|false|yes|no|on|off|y|n|[-+]?(\.inf|\.nan)|[-+]?[0-9][0-9_.:eExXoObB+-]*|\.[0-9].*)$/i
      .test(s);
  return plain ? s : `'${s.replaceAll("'", "''")}'`;
}
