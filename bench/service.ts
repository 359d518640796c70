/** Helpers to run the service and a bare baseline as child processes for benchmarks. */

export interface Child {
  child: Deno.ChildProcess;
  port: number;
  url: string;
  stop(): Promise<void>;
}

import { SERVER_CPU } from "./wrk.ts";

const root = new URL("..", import.meta.url).pathname;

/**
 * Runtime flags of `deno task start` (deno.json): a 4 MiB young generation per isolate
 * keeps five isolates' garbage from growing RSS by ~120 MiB under load.
 */
export const RUN_FLAGS = [
  Deno.env.get("BENCH_V8_FLAGS") ?? "--v8-flags=--max-semi-space-size=4,--heap-growing-percent=10",
];

/** Spawns `deno run -A <script> [scriptArgs]` and waits for the JSON line containing `marker`. */
export async function spawnChild(
  script: string,
  env: Record<string, string>,
  marker: string,
  scriptArgs: string[] = [],
): Promise<Child> {
  const deno = [Deno.execPath(), "run", "-A", ...RUN_FLAGS, `${root}${script}`, ...scriptArgs];
  // taskset execs deno in place: the child's pid is the server's.
  const child = new Deno.Command(SERVER_CPU === null ? deno[0] : "taskset", {
    args: SERVER_CPU === null ? deno.slice(1) : ["-c", SERVER_CPU, ...deno],
    env,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited before listening`);
    buf += value;
    const line = buf.split("\n").find((l) => l.includes(marker));
    if (line) {
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })();
      const port = JSON.parse(line).port as number;
      return {
        child,
        port,
        url: `http://127.0.0.1:${port}`,
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch { /* gone */ }
          await child.status;
        },
      };
    }
  }
}

/**
 * The service on `env` (embedded defaults unless backend variables are given), at the default
 * `LOG_LEVEL=INFO` (one log line per request, as deployed) unless `env` sets another.
 */
export function spawnService(env: Record<string, string> = {}): Promise<Child> {
  const dataDir = Deno.makeTempDirSync({ prefix: "cs-bench-" });
  const clean: Record<string, string> = {
    DATABASE_URL: "",
    REDIS_HOST: "",
    ZOOKEEPER_HOSTS: "",
    KAFKA_BOOTSTRAP_SERVERS: "",
    UNLEASH_URL: "",
  };
  return spawnChild("main.ts", {
    ...clean,
    SERVICE_PORT: "0",
    SERVICE_HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    // The default, set so a LOG_LEVEL in the bench's own environment does not leak in.
    LOG_LEVEL: "INFO",
    ...env,
  }, "config-service listening");
}

export function spawnBare(): Promise<Child> {
  return spawnChild("bench/bare_server.ts", {}, "bare listening");
}

/** Resident set size of a process in MiB (Linux). */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** POSTs JSON and returns the status, failing loudly on a 5xx. */
export async function post(url: string, body: unknown): Promise<number> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await r.body?.cancel();
  if (r.status >= 500) throw new Error(`POST ${url} answered ${r.status}`);
  return r.status;
}
