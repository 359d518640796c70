/** Runs the real service as a child process (`deno run main.ts`) for process-level tests. */
import { BACKEND_VARS } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

export interface ServiceProcess {
  child: Deno.ChildProcess;
  port: number;
  url: string;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  /** Resolves once stdout is read to its end (every line is in `lines`). */
  drained: Promise<void>;
  kill(signal?: Deno.Signal): void;
}

/** Environment for a child service: ours minus the backend variables, plus `env`. */
export function childEnv(env: Record<string, string>, keepBackends = false) {
  const base = Deno.env.toObject();
  if (!keepBackends) { for (const v of BACKEND_VARS) delete base[v]; }
  return { ...base, SERVICE_PORT: "0", SERVICE_HOST: "127.0.0.1", ...env };
}

/** Spawns the service and resolves once it listens. */
export async function spawnService(
  env: Record<string, string>,
  opts: { keepBackends?: boolean; timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: childEnv(env, opts.keepBackends),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  const status = child.status;
  const { promise: port, resolve: resolvePort } = Promise.withResolvers<number>();
  const drained = (async () => {
    const dec = child.stdout.pipeThrough(new TextDecoderStream());
    let buf = "";
    for await (const chunk of dec) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.includes('"msg":"config-service listening"')) resolvePort(JSON.parse(line).port);
      }
    }
  })();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream());
  (async () => {
    for await (const chunk of stderr) lines.push(...chunk.split("\n").filter(Boolean));
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = await Promise.race([
    port,
    status.then((s) => {
      throw new Error(`service exited with ${s.code} before listening:\n${lines.join("\n")}`);
    }),
    new Promise<never>((_, rej) =>
      timer = setTimeout(
        () => rej(new Error(`service did not listen in time:\n${lines.join("\n")}`)),
        opts.timeoutMs ?? 60_000,
      )
    ),
  ]).finally(() => clearTimeout(timer));
  return {
    child,
    port: p,
    url: `http://127.0.0.1:${p}`,
    lines,
    status,
    drained,
    kill: (signal: Deno.Signal = "SIGTERM") => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
  };
}

/** Runs the service to completion with `env` and returns its exit code and output. */
export async function runServiceOnce(env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: childEnv(env),
    clearEnv: true,
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
