import assert from "node:assert/strict";

// The README is the front door; the reference lives in docs/. These tests keep the README short
// and every relative link and #anchor in README.md and docs/*.md pointing at something real.

const root = new URL("../", import.meta.url);

function read(path: string): string {
  return Deno.readTextFileSync(new URL(path, root));
}

function markdownFiles(): string[] {
  const docs = [...Deno.readDirSync(new URL("docs/", root))]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ["README.md", ...docs];
}

const FENCE = /^ {0,3}(```+|~~~+)[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm;

function withoutFences(markdown: string): string {
  return markdown.replace(FENCE, "");
}

/** The text outside fenced code blocks and inline code spans, where links are links. */
function prose(markdown: string): string {
  return withoutFences(markdown)
    .replace(/(`+)[\s\S]*?\1/g, "");
}

/** GitHub's heading anchors: lowercase, punctuation other than `-` and `_` dropped, spaces → `-`,
 * and `-1`, `-2`, … on repeats. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  const text = withoutFences(markdown);
  for (const m of text.matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const rendered = m[1]
      .replace(/`([^`]*)`/g, "$1")
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1");
    const slug = rendered.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/ /g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Link targets of inline links `[text](target)` and reference definitions `[id]: target`. */
function links(markdown: string): string[] {
  const text = prose(markdown);
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) {
    out.push(m[1]);
  }
  return out;
}

function exists(url: URL): boolean {
  try {
    Deno.statSync(url);
    return true;
  } catch {
    return false;
  }
}

Deno.test("the README is a front door: fewer than 250 lines", () => {
  const lines = read("README.md").split("\n");
  if (lines.at(-1) === "") lines.pop();
  assert.ok(lines.length < 250, `README.md has ${lines.length} lines`);
});

Deno.test("the slug rules are GitHub's", () => {
  assert.deepEqual(
    [...anchors(
      "# Choices where the spec is silent\n## HTTP behaviour\n## `a_b` c.d!\n## x\n## x",
    )],
    ["choices-where-the-spec-is-silent", "http-behaviour", "a_b-cd", "x", "x-1"],
  );
});

Deno.test("every relative link and #anchor in README.md and docs/*.md resolves", () => {
  const files = markdownFiles();
  assert.ok(files.length > 1, "docs/*.md exist");
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const base = new URL(file, root);
    for (const target of links(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:, …
      checked++;
      const hash = target.indexOf("#");
      const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
      const url = path === "" ? base : new URL(path, base);
      if (!exists(url)) {
        broken.push(`${file}: ${target} (no such file)`);
        continue;
      }
      if (anchor === null) continue;
      if (!url.pathname.endsWith(".md")) {
        broken.push(`${file}: ${target} (anchor into a file that is not Markdown)`);
      } else if (!anchors(Deno.readTextFileSync(url)).has(anchor)) {
        broken.push(`${file}: ${target} (no such heading)`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(checked > 0, "links were found");
});
