/**
 * Test helpers: temporary settings, a running embedded actor set, and the gate that runs a
 * real-server suite only when its variables are set (and fails in CI when they are not).
 */
import { startActors } from "../actors/mod.ts";
import { log } from "../lib/log.ts";
import { loadSettings, type Settings } from "../lib/settings.ts";
import { buildApp } from "../routes/app.ts";
import { WatchHub } from "../lib/config/watch_hub.ts";

/** Captured log lines of this test process (the logger writes here instead of stdout). */
export const capturedLog: string[] = [];
log.setSink((line) => capturedLog.push(line));

/** Environment variables naming the real backends; removed for embedded-only tests. */
export const BACKEND_VARS = [
  "DATABASE_URL",
  "REDIS_HOST",
  "ZOOKEEPER_HOSTS",
  "KAFKA_BOOTSTRAP_SERVERS",
  "UNLEASH_URL",
];

/** Temporary files and directories this test module made, removed when it ends. */
const temporary: string[] = [];
// `unload` fires once per test module, after its last test, whether the tests passed or not.
globalThis.addEventListener("unload", () => {
  for (const path of temporary.splice(0)) {
    try {
      Deno.removeSync(path, { recursive: true });
    } catch { /* removed by its test already */ }
  }
});

/**
 * A new temporary directory, removed with its contents when the test module ends. Tests make
 * temporary paths only through this and {@link tempFile}, so a run leaves nothing in /tmp.
 */
export function tempDir(prefix = "cs-test-"): string {
  const dir = Deno.makeTempDirSync({ prefix });
  temporary.push(dir);
  return dir;
}

/** A new empty temporary file, removed when the test module ends. */
export function tempFile(opts: { prefix?: string; suffix?: string } = {}): string {
  const path = Deno.makeTempFileSync({ prefix: "cs-test-", ...opts });
  temporary.push(path);
  return path;
}

/** Settings on the embedded defaults with a fresh DATA_DIR, plus overrides. */
export function embeddedSettings(over: Record<string, string> = {}): Settings {
  return loadSettings({ DATA_DIR: tempDir(), LOG_LEVEL: "WARNING", ...over });
}

/** Settings from the real environment (the stack's exports) plus overrides. */
export function stackSettings(over: Record<string, string> = {}): Settings {
  return loadSettings({
    ...Deno.env.toObject(),
    DATA_DIR: tempDir(),
    LOG_LEVEL: "WARNING",
    ...over,
  });
}

/** Starts the four actors and builds the app; dispose to stop them. */
export async function startService(settings: Settings) {
  const hub = new WatchHub();
  const actors = await startActors(settings, hub);
  const app = buildApp({
    settings,
    actors,
    startedAt: Date.now(),
    config: actors.config,
    hub,
    registry: actors.registry,
    health: actors.health,
    flags: actors.flags,
  });
  return {
    app,
    actors,
    settings,
    hub,
    async [Symbol.asyncDispose]() {
      hub.close();
      await Promise.all(Object.values(actors).map((a) => a.stop()));
    },
  };
}

/** The media type of every error answer. */
export const PROBLEM = "application/problem+json";

/** Anything answering Hono's `app.request()`: the in-process app of {@link startService}. */
export interface InProcessApp {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/**
 * One request to the in-process app, through its fetch handler (no TCP). A `body` goes as
 * `application/json`: a string as written (so a test can send malformed JSON), anything else
 * through `JSON.stringify`; `headers` may override the content type.
 */
export function send(
  app: InProcessApp,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return Promise.resolve(app.request(path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  }));
}

/**
 * {@link send}, the answer read whole: its text, and its JSON as `body` (`undefined` when the
 * text is not JSON, so any answer can be inspected).
 */
export async function call(
  app: InProcessApp,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; headers: Headers; text: string; body: any }> {
  const res = await send(app, method, path, body, headers);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A JSON answer read whole; the body is null when empty. @throws when it is not JSON. */
// deno-lint-ignore no-explicit-any
async function jsonAnswer(res: Response): Promise<{ status: number; headers: Headers; body: any }> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** POSTs `body` (see {@link send}) and reads the JSON answer. @throws when it is not JSON. */
export async function post(
  app: InProcessApp,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return await jsonAnswer(await send(app, "POST", path, body, headers));
}

/** GETs `path` and reads the JSON answer. @throws when it is not JSON. */
export async function get(app: InProcessApp, path: string, headers: Record<string, string> = {}) {
  return await jsonAnswer(await send(app, "GET", path, undefined, headers));
}

/** Registers an instance through the app; asserts the 201 and returns nothing else. */
export async function registerInstance(
  app: InProcessApp,
  body: { service_name: string; service_url: string; metadata?: Record<string, unknown> },
): Promise<void> {
  const res = await send(app, "POST", "/api/v1/registry/register", body);
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${await res.text()}`);
  await res.body?.cancel();
}

/**
 * A real HTTP instance to register: `/health` answers 200 (or `health()`), `/ready` answers
 * `ready()` when given, any other path 404 ("not provided"). Shut `server` down when done.
 */
export function stubInstance(opts: { health?: () => number; ready?: () => number } = {}) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/health") return new Response("ok", { status: opts.health?.() ?? 200 });
    if (path === "/ready" && opts.ready) return new Response("", { status: opts.ready() });
    return new Response("not here", { status: 404 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

/**
 * A test whose servers, sockets or child processes end after its body (a closed socket's
 * read, a child's pipes): the op and resource sanitizers are off.
 */
export function ioTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

const announced = new Set<string>();

/**
 * Registers `fn` as a test that needs a real server. When one of `vars` is unset it prints
 * one line saying the suite did not run; with `CI=true` that is a failing test instead.
 */
export function serverTest(
  suite: string,
  vars: string[],
  name: string,
  fn: () => Promise<void>,
): void {
  const missing = vars.filter((v) => !Deno.env.get(v));
  if (missing.length === 0) {
    Deno.test({ name: `${suite}: ${name}`, fn, sanitizeOps: false, sanitizeResources: false });
    return;
  }
  if (Deno.env.get("CI") === "true") {
    Deno.test(`${suite}: ${name}`, () => {
      throw new Error(`${suite} server not configured (${missing.join(", ")} unset) but CI=true`);
    });
    return;
  }
  if (!announced.has(suite)) {
    announced.add(suite);
    console.log(`SKIPPED ${suite} suite: ${missing.join(", ")} not set (run scripts/stack.sh up)`);
  }
  Deno.test({ name: `${suite}: ${name}`, ignore: true, fn });
}

/** Resolves after `ms` milliseconds of wall time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Calls `fn` every `intervalMs` (default 50) until its value passes `ok`, and returns that
 * value. Unlike {@link waitFor}, an error from `fn` is not retried: it fails the wait.
 * @throws {Error} naming `what` and the last value when `timeoutMs` (default 5,000) passes.
 */
export async function until<T>(
  fn: () => T | Promise<T>,
  ok: (value: T) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const { timeoutMs = 5_000, intervalMs = 50, what = "condition" } = opts;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(value)}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** Polls `fn` until it returns truthy or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = "condition",
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

const STACK = new URL("../scripts/stack.sh", import.meta.url).pathname;

/** `bash scripts/stack.sh <cmd> <svc>`; returns when the script does (start: when ready). */
export async function stack(cmd: "start" | "stop", svc: string): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [STACK, cmd, svc],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const dec = new TextDecoder();
    throw new Error(
      `stack.sh ${cmd} ${svc} failed (${out.code}):\n${dec.decode(out.stdout)}${
        dec.decode(out.stderr)
      }`,
    );
  }
}
