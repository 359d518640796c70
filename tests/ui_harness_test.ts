/**
 * Smoke test of the browser harness (tests/_browser.ts) against a tiny page served under a
 * strict Content-Security-Policy: loading, keyboard reachability, axe-core (which must find a
 * violation on a bad page, so a clean report means something), console and page errors, and
 * screenshots at desktop and phone widths.
 */
import assert from "node:assert/strict";
import {
  type AxeViolation,
  browserTest,
  chromiumPath,
  DESKTOP,
  launchMs,
  MOBILE,
} from "./_browser.ts";

const CSP = "default-src 'self'; frame-ancestors 'none'";

function html(title: string, body: string, head = ""): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="/icon.svg">
<link rel="stylesheet" href="/app.css">
${head}
</head>
<body>
${body}
</body>
</html>`;
}

const PAGES: Record<string, string> = {
  // Accessible: landmarks, one h1, named controls, a live region for what the button adds.
  "/": html(
    "Harness smoke",
    `<header><p>config-service</p></header>
<main>
<h1>Harness smoke</h1>
<p><a href="#items">Skip to the items</a></p>
<label for="name">Item name</label> <input id="name" type="text" value="first">
<button id="add" type="button">Add item</button>
<button id="unreachable" type="button" tabindex="-1">Not in the tab order</button>
<ul id="items" aria-live="polite"></ul>
</main>`,
    `<script src="/app.js" defer></script>`,
  ),
  // Deliberately broken for axe: an image without alt text, a button without a name.
  "/bad": html(
    "Bad page",
    `<main><h1>Bad page</h1><img src="/dot.svg"><button id="nameless" type="button"></button></main>`,
  ),
  // A script that logs an error and then throws.
  "/throws": html("Throws", `<main><h1>Throws</h1></main>`, `<script src="/throws.js"></script>`),
  // An inline script: the CSP refuses it, and the refusal is a console error.
  "/inline": html(
    "Inline",
    `<main><h1 id="title">Inline</h1></main><script>document.title = "ran";</script>`,
  ),
};

const ASSETS: Record<string, [string, string]> = {
  "/app.js": [
    "text/javascript",
    `const list = document.getElementById("items");
const name = document.getElementById("name");
document.getElementById("add").addEventListener("click", () => {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.className = "item";
  b.textContent = "Remove " + name.value;
  b.addEventListener("click", () => li.remove());
  li.append(b);
  list.append(li);
});
`,
  ],
  "/throws.js": [
    "text/javascript",
    `console.error("logged by throws.js");\nthrow new Error("boom from throws.js");\n`,
  ],
  "/app.css": [
    "text/css",
    `body { font: 16px/1.5 sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #222; }
header { border-bottom: 1px solid #888; }
button { font: inherit; padding: .25rem .75rem; }
:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
`,
  ],
  // Without an icon the browser asks for /favicon.ico, and its 404 is a console error.
  "/icon.svg": [
    "image/svg+xml",
    `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16"/></svg>`,
  ],
  "/dot.svg": [
    "image/svg+xml",
    `<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><circle cx="4" cy="4" r="4"/></svg>`,
  ],
};

/** The pages above, each with the strict CSP; shut down when the module ends. */
function serve(): { url: string; server: Deno.HttpServer } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const headers = new Headers({ "content-security-policy": CSP });
    if (PAGES[path]) {
      headers.set("content-type", "text/html; charset=utf-8");
      return new Response(PAGES[path], { headers });
    }
    const asset = ASSETS[path];
    if (asset) {
      headers.set("content-type", asset[0]);
      return new Response(asset[1], { headers });
    }
    return new Response("not here", { status: 404, headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

// One server for the module, started only when the browser tests will run.
const site = chromiumPath() ? serve() : null;
globalThis.addEventListener("unload", () => void site?.server.shutdown());
const base = () => site!.url;

function ids(violations: AxeViolation[]): string[] {
  return violations.map((v) => v.id).sort();
}

browserTest(
  "browser harness: the page loads under a strict CSP and works by keyboard",
  async (b) => {
    const page = await b.page({ baseURL: base() });
    const res = await page.goto("/");
    assert.equal(res?.status(), 200);
    assert.equal(res?.headers()["content-security-policy"], CSP);
    assert.equal(await page.title(), "Harness smoke");
    assert.deepEqual(page.viewportSize(), DESKTOP);

    // Skip link, the text field, then the button: reached by Tab, activated by Enter.
    assert.equal(await b.tabTo(page, "#add"), 3);
    await page.keyboard.press("Enter");
    await page.locator("#items button.item").waitFor();
    assert.equal(await page.locator("#items button.item").textContent(), "Remove first");
    // The added button is next in the tab order, and Enter on it removes its item.
    assert.equal(await b.tabTo(page, "#items button.item", 1), 1);
    await page.keyboard.press("Enter");
    await page.locator("#items li").waitFor({ state: "detached" });

    // tabTo is no formality: an element outside the tab order is never reached.
    await assert.rejects(
      () => b.tabTo(page, "#unreachable", 8),
      /not reached in 8 Tab presses; the focus went to: .*button#add/,
    );
    assert.deepEqual(b.consoleErrors(page), []);
  },
);

browserTest(
  "browser harness: axe finds nothing serious on the good page and does on a bad one",
  async (b) => {
    const good = await b.page({ baseURL: base() });
    await good.goto("/");
    assert.deepEqual(await b.axe(good), []);
    // Again with what the script adds, and a second run reuses the injected axe.
    await good.click("#add");
    await good.locator("#items button.item").waitFor();
    assert.deepEqual(await b.axe(good), []);
    assert.deepEqual(b.consoleErrors(good), [], "injecting axe is no CSP refusal");

    const bad = await b.page({ baseURL: base() });
    await bad.goto("/bad");
    const found = await b.axe(bad);
    assert.deepEqual(ids(found), ["button-name", "image-alt"], JSON.stringify(found, null, 2));
    for (const v of found) {
      assert.ok(v.impact === "serious" || v.impact === "critical", v.impact);
      assert.ok(v.help.length > 0);
    }
    assert.deepEqual(found.find((v) => v.id === "button-name")?.targets, ["#nameless"]);
    assert.deepEqual(found.find((v) => v.id === "image-alt")?.targets, ["img"]);
    // Limited to a part of the page.
    assert.deepEqual(ids(await b.axe(bad, { include: "h1" })), []);
  },
);

browserTest(
  "browser harness: console errors, page errors and CSP refusals are collected",
  async (b) => {
    const page = await b.page({ baseURL: base() });
    await page.goto("/throws");
    const errors = b.consoleErrors(page);
    assert.ok(errors.some((e) => e.startsWith("console: logged by throws.js")), errors.join("\n"));
    assert.ok(errors.includes("pageerror: boom from throws.js"), errors.join("\n"));

    // The CSP is in force (the harness does not bypass it): the inline script is refused, and
    // the refusal is reported.
    const inline = await b.page({ baseURL: base() });
    await inline.goto("/inline");
    assert.equal(await inline.title(), "Inline");
    const refused = b.consoleErrors(inline);
    assert.equal(refused.length, 1, refused.join("\n"));
    assert.match(refused[0], /^console: .*Content Security Policy/);
    // A fresh page starts clean: errors belong to their page.
    assert.deepEqual(b.consoleErrors(await b.page()), []);
  },
);

/** The width of a PNG, from its IHDR chunk. */
function pngWidth(bytes: Uint8Array): number {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "a PNG");
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(16);
}

browserTest("browser harness: screenshots at 1280 and 390 pixels wide", async (b) => {
  for (const [name, size] of [["harness-desktop", DESKTOP], ["harness-mobile", MOBILE]] as const) {
    const page = await b.page({ baseURL: base(), width: size.width, height: size.height });
    await page.goto("/");
    const path = await b.screenshot(page, name);
    assert.match(path, new RegExp(`/test-results/screenshots/${name}\\.png$`));
    // A full-page shot as wide as the viewport: nothing overflows sideways.
    assert.equal(pngWidth(Deno.readFileSync(path)), size.width, path);
  }
  assert.ok(launchMs !== null && launchMs > 0);
});

/** This file's browser tests in a child `deno test` without Chromium: its exit code and output. */
async function runWithoutChromium(ci: boolean): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", "--filter", "browser harness:", "tests/ui_harness_test.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    env: { CHROMIUM_PATH: "/nonexistent", CI: ci ? "true" : "", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("browserTest without Chromium: one line and skipped, or failed under CI=true", async () => {
  const [local, ci] = await Promise.all([runWithoutChromium(false), runWithoutChromium(true)]);
  const line = "browser tests did not run: Chromium not found " +
    "(CHROMIUM_PATH=/nonexistent is not an executable file) (apt-get install -y chromium)";
  assert.equal(local.code, 0, local.out);
  assert.equal(local.out.split("\n").filter((l) => l.includes(line)).length, 1, local.out);
  assert.match(local.out, /0 passed \| 0 failed \| 4 ignored/);

  assert.notEqual(ci.code, 0, ci.out);
  assert.ok(ci.out.includes(`${line} but CI=true`), ci.out);
  assert.match(ci.out, /0 passed \| 4 failed/);
});
