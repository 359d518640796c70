/**
 * Layout rules no type checker enforces: actor files stay small enough to read whole, and
 * only the adapters in lib/backends/ import a backend driver (docs: STYLE.md, "Adapters").
 * Imports are found with regular expressions over the source with its comments removed:
 * static, `import type`, re-exports, side-effect imports, `import(…)` (dynamic or in a type)
 * and `require(…)`, each possibly spread over several lines. tests/ is not scanned: tests use
 * the real clients on purpose, to check the adapters against them.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The most lines one file under actors/ may have. */
const MAX_ACTOR_LINES = 400;

/** Driver packages: only lib/backends/ may import them (any subpath, any `npm:` form). */
const DRIVERS = ["postgres", "ioredis", "node-zookeeper-client", "kafkajs", "unleash-client"];

/**
 * The one exception. lib/flags/engine.ts evaluates flags with unleash-client's own strategy
 * engine (`UnleashClient` in lib/client.js is the evaluator over given definitions, with no
 * repository, polling or metrics), so that evaluation matches Unleash's exactly; the network
 * client (the package root, lib/unleash.js, lib/repository/, lib/metrics.js) stays behind
 * lib/backends/unleash.ts. Exactly these modules, in exactly that file (lib/helpers.js for
 * the operators' own context lookup, `resolveContextValue`).
 */
const ALLOWED: Record<string, string[]> = {
  "lib/flags/engine.ts": [
    "unleash-client/lib/client.js",
    "unleash-client/lib/context.js",
    "unleash-client/lib/feature.js",
    "unleash-client/lib/helpers.js",
    "unleash-client/lib/strategy/index.js",
    "unleash-client/lib/strategy/strategy.js",
    "unleash-client/lib/variant.js",
  ],
};

const SOURCE = /\.(ts|tsx|mts|js|mjs)$/;

/** Files below `dir` (relative to the repository root), recursively, sorted. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sourceFiles(path));
    else if (entry.isFile && SOURCE.test(entry.name)) out.push(path);
  }
  return out.sort();
}

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, ROOT));
}

function lineCount(text: string): number {
  if (text === "") return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/**
 * Removes comments, so an import written in a JSDoc example is not one. A `//` right after
 * `:` is kept (`"http://…"`); a comment marker inside some other string may cut that line,
 * which can only hide code on the rest of that one line.
 */
function stripComments(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/(^|[^:\\])\/\/[^\n]*/g, "$1");
}

const IMPORT_PATTERNS = [
  // import x from "m"; import { a,\n b } from "m"; import type …; export … from "m"
  /\b(?:import|export)\s+(?:type\s+)?[\w$*{}\s,]*?\bfrom\s*["']([^"']+)["']/g,
  // import "m" (side effects only)
  /\bimport\s*["']([^"']+)["']/g,
  // import("m"), typeof import("m"), require("m")
  /\b(?:import|require)\s*\(\s*["'`]([^"'`]+)["'`]/g,
];

/** Every module specifier `src` imports, in order of appearance. */
function importsOf(src: string): string[] {
  const code = stripComments(src);
  const found: [number, string][] = [];
  for (const re of IMPORT_PATTERNS) {
    for (const m of code.matchAll(re)) found.push([m.index, m[1]]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, spec]) => spec);
}

/** The driver a specifier names (`npm:postgres@3/x`, `postgres/x`), or null. */
function driverOf(spec: string): string | null {
  const bare = spec.replace(/^npm:\/?/, "");
  const parts = bare.split("/");
  const name = bare.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const pkg = name.replace(/(.)@.*$/, "$1");
  return DRIVERS.includes(pkg) ? pkg : null;
}

/** The specifier without `npm:` and without a version: `unleash-client/lib/client.js`. */
function modulePath(spec: string): string {
  return spec.replace(/^npm:\/?/, "").replace(/^((?:@[^/]+\/)?[^/@]+)@[^/]*/, "$1");
}

Deno.test("no file under actors/ is over 400 lines", () => {
  const long = sourceFiles("actors")
    .map((path) => ({ path, lines: lineCount(read(path)) }))
    .filter((f) => f.lines > MAX_ACTOR_LINES)
    .map((f) => `${f.path}: ${f.lines} lines`);
  assert.deepEqual(long, [], `split these (at most ${MAX_ACTOR_LINES} lines each)`);
});

Deno.test("only lib/backends/ imports a driver (postgres, ioredis, node-zookeeper-client, kafkajs, unleash-client)", () => {
  const files = ["main.ts", ...["actors", "routes", "lib"].flatMap(sourceFiles)]
    .filter((path) => !path.startsWith("lib/backends/"));
  assert.ok(files.length > 50, `scanned ${files.length} files`);
  const offences: string[] = [];
  const unused = new Set(Object.entries(ALLOWED).flatMap(([f, ms]) => ms.map((m) => `${f} ${m}`)));
  for (const path of files) {
    for (const spec of importsOf(read(path))) {
      if (driverOf(spec) === null) continue;
      const mod = modulePath(spec);
      if (ALLOWED[path]?.includes(mod)) {
        unused.delete(`${path} ${mod}`);
        continue;
      }
      offences.push(`${path} imports ${spec}`);
    }
  }
  assert.deepEqual(offences, [], "move driver use behind an adapter in lib/backends/");
  // An exception nobody needs any more is removed, so it cannot cover a new import.
  assert.deepEqual([...unused], [], "exceptions no longer used");
});

Deno.test("importsOf() finds every form of import and ignores comments", () => {
  const src = [
    `import postgres from "postgres";`,
    `import {`,
    `  Kafka,`,
    `  type Producer,`,
    `} from "npm:kafkajs@^2.2.4";`,
    `import type { Redis } from 'ioredis';`,
    `import * as zk from "node-zookeeper-client";`,
    `import "npm:/unleash-client@6/lib/unleash.js";`,
    `export { x } from "./local.ts";`,
    `export * from "unleash-client";`,
    `const m = await import(`,
    `  "postgres"`,
    `);`,
    `type C = typeof import("unleash-client/lib/client.js").default;`,
    `const r = require("ioredis");`,
    `// import nope from "kafkajs";`,
    `/** import("postgres") in a comment */`,
    `const url = "http://example/"; // not an import`,
  ].join("\n");
  assert.deepEqual(importsOf(src), [
    "postgres",
    "npm:kafkajs@^2.2.4",
    "ioredis",
    "node-zookeeper-client",
    "npm:/unleash-client@6/lib/unleash.js",
    "./local.ts",
    "unleash-client",
    "postgres",
    "unleash-client/lib/client.js",
    "ioredis",
  ]);
  assert.deepEqual(
    ["npm:kafkajs@^2.2.4", "npm:/unleash-client@6/lib/unleash.js", "postgres/x", "./postgres.ts"]
      .map(driverOf),
    ["kafkajs", "unleash-client", "postgres", null],
  );
  assert.equal(
    modulePath("npm:/unleash-client@^6.12.0/lib/client.js"),
    "unleash-client/lib/client.js",
  );
});
