/**
 * Browser tests: Debian's Chromium driven through npm `playwright-core`, one browser per test
 * module, launched by the first page a test asks for and closed after the module's last
 * browser test. Like `serverTest` in tests/_helpers.ts, a missing browser prints one line and
 * skips the tests, and with `CI=true` fails them instead.
 *
 * ```ts
 * browserTest("the console lists the services", async (b) => {
 *   const page = await b.page({ baseURL: url });
 *   await page.goto("/ui");
 *   assert.deepEqual(await b.axe(page), []);
 *   assert.deepEqual(b.consoleErrors(page), []);
 * });
 * ```
 */
import type { Browser, BrowserContext, Page } from "playwright-core";

/** Viewport of {@link BrowserKit.page} by default. */
export const DESKTOP = { width: 1280, height: 800 } as const;
/** A phone-sized viewport: `b.page(MOBILE)`. */
export const MOBILE = { width: 390, height: 844 } as const;

/** What the tests print and fail with when no Chromium is found. */
const INSTALL_HINT = "apt-get install -y chromium";

/** Where {@link BrowserKit.screenshot} writes: `test-results/screenshots/` in the repository. */
export const SCREENSHOT_DIR = new URL("../test-results/screenshots/", import.meta.url);

function isExecutableFile(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && (st.mode === null || (st.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

/**
 * The Chromium to launch: `CHROMIUM_PATH` when set (and only it: a set path that does not exist
 * is "not found", not a reason to look elsewhere), else `chromium` or `chromium-browser` on
 * PATH, else `/usr/bin/chromium`; null when none is an executable file.
 */
export function chromiumPath(): string | null {
  const explicit = Deno.env.get("CHROMIUM_PATH");
  if (explicit) return isExecutableFile(explicit) ? explicit : null;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  for (const name of ["chromium", "chromium-browser"]) {
    for (const dir of dirs) {
      const path = `${dir}/${name}`;
      if (isExecutableFile(path)) return path;
    }
  }
  return isExecutableFile("/usr/bin/chromium") ? "/usr/bin/chromium" : null;
}

/** Why the browser tests cannot run, in one line. */
function notFound(): string {
  const explicit = Deno.env.get("CHROMIUM_PATH");
  const where = explicit ? ` (CHROMIUM_PATH=${explicit} is not an executable file)` : "";
  return `Chromium not found${where} (${INSTALL_HINT})`;
}

/**
 * Launch arguments, on top of Playwright's own (`--headless`, which is Chromium's new headless
 * mode since the old one left the browser binary, and `--no-sandbox` since `chromiumSandbox` is
 * false: the sandbox cannot start as root, which CI is).
 * - `--disable-dev-shm-usage`: shared memory in /tmp, as a container's /dev/shm is often 64 MB
 *   and a full one crashes the renderer.
 * - `--disable-gpu`: no GPU here; without it Chromium starts a GPU process only to fall back.
 */
export const LAUNCH_ARGS = ["--disable-dev-shm-usage", "--disable-gpu"];

/** A violation of an axe-core rule, as {@link BrowserKit.axe} reports it. */
export interface AxeViolation {
  /** The rule: `image-alt`, `button-name`, `color-contrast`, … */
  id: string;
  impact: "serious" | "critical";
  /** The rule's one-line summary. */
  help: string;
  /** One CSS selector per offending element (a frame's selectors joined by ` >>> `). */
  targets: string[];
}

/** Options of {@link BrowserKit.page}. */
export interface PageOptions {
  /** Viewport width in CSS pixels; 1280 by default, 390 for a phone. */
  width?: number;
  /** Viewport height in CSS pixels; 800 by default ({@link MOBILE} has 844). */
  height?: number;
  /** Base of relative URLs in `page.goto("/ui")`. */
  baseURL?: string;
}

/** What a {@link browserTest} body gets. Everything it opens is closed when the test ends. */
export interface BrowserKit {
  /**
   * A new page in a fresh context (no cookies or storage shared with other pages), whose
   * console errors and uncaught page errors are collected from now on.
   */
  page(opts?: PageOptions): Promise<Page>;
  /**
   * The page's console errors (`console.error`, failed loads, CSP refusals) and uncaught
   * exceptions so far, each as one line: `console: …` or `pageerror: …`.
   */
  consoleErrors(page: Page): string[];
  /**
   * Runs axe-core over the page (or over `opts.include`, a selector) and returns the violations
   * of impact "serious" or "critical"; [] when there are none.
   */
  axe(page: Page, opts?: { include?: string }): Promise<AxeViolation[]>;
  /**
   * Saves a PNG of the whole page (`fullPage: false` for the viewport only) to
   * `test-results/screenshots/<name>.png` and returns its path.
   */
  screenshot(page: Page, name: string, opts?: { fullPage?: boolean }): Promise<string>;
  /**
   * Presses Tab until the element matching `selector` has the focus and returns how many
   * presses it took: proof that a keyboard reaches it. Starts from the current focus.
   * @throws {Error} listing the elements that had the focus when `maxTabs` (default 30) pass.
   */
  tabTo(page: Page, selector: string, maxTabs?: number): Promise<number>;
}

// --- the module's one browser ---------------------------------------------------------------

let browser: Promise<Browser> | null = null;
/** Browser tests registered in this module and not finished: the last one closes the browser. */
let pending = 0;

/** Milliseconds the launch took, for reports; null before the first launch. */
export let launchMs: number | null = null;

function launch(executablePath: string): Promise<Browser> {
  browser ??= (async () => {
    const started = performance.now();
    // Loaded here, not at the top: a run without Chromium never loads Playwright's bundle.
    const { chromium } = await import("playwright-core");
    const b = await chromium.launch({
      executablePath,
      headless: true,
      chromiumSandbox: false,
      args: LAUNCH_ARGS,
      timeout: 60_000,
    });
    launchMs = Math.round(performance.now() - started);
    return b;
  })();
  // A failed launch is not kept: the next test tries again and reports its own error.
  browser.catch(() => browser = null);
  return browser;
}

/**
 * Closes the browser. Called after the module's last browser test; when that never runs (a
 * `--filter` leaves some out), Playwright kills the browser as the test process exits.
 */
async function closeBrowser(): Promise<void> {
  const b = browser;
  browser = null;
  if (b) await (await b.catch(() => null))?.close();
}

// --- axe-core -------------------------------------------------------------------------------

let axeSource: string | null = null;

/**
 * axe-core's browser build: `axe.min.js` beside the file `axe-core` resolves to (the
 * repository's node_modules/, as deno.json has `nodeModulesDir: "auto"`), else
 * node_modules/axe-core/ at the repository root.
 */
function readAxe(): string {
  if (axeSource !== null) return axeSource;
  const candidates: URL[] = [];
  try {
    const main = new URL(import.meta.resolve("axe-core"));
    if (main.protocol === "file:") candidates.push(new URL("axe.min.js", main));
  } catch { /* not resolvable to a file: try node_modules/ */ }
  candidates.push(new URL("../node_modules/axe-core/axe.min.js", import.meta.url));
  for (const url of candidates) {
    try {
      return axeSource = Deno.readTextFileSync(url);
    } catch { /* the next one */ }
  }
  throw new Error(
    `axe-core not found (looked at ${candidates.map((u) => u.pathname).join(", ")}): deno install`,
  );
}

// --- what the page has ----------------------------------------------------------------------

/**
 * The page's globals that the functions below use, typed just enough: those functions run in
 * the page, but the tests are type-checked without the DOM library.
 */
interface InPage {
  document: {
    activeElement: {
      id: string;
      tagName: string;
      textContent: string | null;
      getAttribute(name: string): string | null;
      matches(selector: string): boolean;
    } | null;
    body: unknown;
  };
  axe: {
    run(
      context: unknown,
      options: { resultTypes: string[] },
    ): Promise<{
      violations: { id: string; impact: string; help: string; nodes: { target: unknown[] }[] }[];
    }>;
  };
}

// --- the kit --------------------------------------------------------------------------------

const errorsOf = new WeakMap<Page, string[]>();

class Kit implements BrowserKit {
  #contexts: BrowserContext[] = [];

  constructor(private executablePath: string) {}

  async page(opts: PageOptions = {}): Promise<Page> {
    const b = await launch(this.executablePath);
    const context = await b.newContext({
      viewport: { width: opts.width ?? DESKTOP.width, height: opts.height ?? DESKTOP.height },
      deviceScaleFactor: 1,
      baseURL: opts.baseURL,
      locale: "en-US",
      timezoneId: "UTC",
      colorScheme: "light",
      reducedMotion: "reduce",
      serviceWorkers: "block",
    });
    this.#contexts.push(context);
    // Two cores and a parallel suite: generous, but a missing element fails in seconds, not 30.
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(20_000);
    const page = await context.newPage();
    const errors: string[] = [];
    errorsOf.set(page, errors);
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const { url, lineNumber } = msg.location();
      errors.push(`console: ${msg.text()}${url ? ` (${url}:${lineNumber + 1})` : ""}`);
    });
    page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
    return page;
  }

  consoleErrors(page: Page): string[] {
    const errors = errorsOf.get(page);
    if (!errors) throw new Error("consoleErrors(): not a page of this kit's page()");
    return [...errors];
  }

  async axe(page: Page, opts: { include?: string } = {}): Promise<AxeViolation[]> {
    // axe goes in through Playwright's evaluate, that is the DevTools protocol, which the
    // page's Content-Security-Policy does not govern: the page keeps its real CSP, so a CSP
    // refusal of the page's own code still shows in consoleErrors(). `addScriptTag` would be
    // refused by `script-src 'self'`, and a `bypassCSP` context would hide those refusals.
    const present = await page.evaluate(() => "axe" in globalThis);
    if (!present) await page.evaluate(readAxe());
    const violations = await page.evaluate(async (include) => {
      const { axe, document } = globalThis as unknown as InPage;
      const result = await axe.run(include ? { include: [include] } : document, {
        resultTypes: ["violations"],
      });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.flat().join(" >>> ")),
      }));
    }, opts.include ?? null) as AxeViolation[];
    return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  }

  async screenshot(page: Page, name: string, opts: { fullPage?: boolean } = {}): Promise<string> {
    const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-");
    Deno.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const path = new URL(`${safe}.png`, SCREENSHOT_DIR).pathname;
    await page.screenshot({ path, fullPage: opts.fullPage ?? true, animations: "disabled" });
    return path;
  }

  async tabTo(page: Page, selector: string, maxTabs = 30): Promise<number> {
    const focused = () =>
      page.evaluate((sel) => {
        const el = (globalThis as unknown as InPage).document.activeElement;
        if (!el || el === (globalThis as unknown as InPage).document.body) {
          return { hit: false, what: "(body)" };
        }
        const id = el.id ? `#${el.id}` : "";
        const label = (el.getAttribute("aria-label") ?? el.textContent ?? "").trim().slice(0, 30);
        return { hit: el.matches(sel), what: `${el.tagName.toLowerCase()}${id} "${label}"` };
      }, selector);
    const seen: string[] = [];
    for (let presses = 1; presses <= maxTabs; presses++) {
      await page.keyboard.press("Tab");
      const now = await focused();
      if (now.hit) return presses;
      seen.push(now.what);
    }
    throw new Error(
      `tabTo(${selector}): not reached in ${maxTabs} Tab presses; the focus went to: ${
        seen.join(", ")
      }`,
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.#contexts.splice(0).map((c) => c.close().catch(() => {})));
  }
}

// --- registration ---------------------------------------------------------------------------

let announced = false;

/**
 * Registers `fn` as a browser test. Without Chromium (see {@link chromiumPath}) it prints one
 * line per test module saying the browser tests did not run and skips them; with `CI=true`
 * each is a failing test instead. The op and resource sanitizers are off: Playwright's pipe to
 * the browser outlives a test.
 */
export function browserTest(name: string, fn: (b: BrowserKit) => Promise<void>): void {
  const executablePath = chromiumPath();
  if (!executablePath) {
    const why = notFound();
    if (Deno.env.get("CI") === "true") {
      Deno.test(name, () => {
        throw new Error(`browser tests did not run: ${why} but CI=true`);
      });
      return;
    }
    if (!announced) {
      announced = true;
      console.log(`browser tests did not run: ${why}`);
    }
    Deno.test({ name, ignore: true, fn() {} });
    return;
  }
  pending++;
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const kit = new Kit(executablePath);
      try {
        await fn(kit);
      } finally {
        await kit.close();
        if (--pending === 0) await closeBrowser();
      }
    },
  });
}
