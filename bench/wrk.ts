/** Runs wrk against a URL and parses req/s and latency percentiles from its output. */

export interface WrkResult {
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** Responses completed, and the seconds they took (less than asked if the script stopped). */
  requests: number;
  seconds: number;
}

export interface WrkOptions {
  durationS: number;
  connections: number;
  threads: number;
  /** Optional wrk Lua script (for POST bodies). */
  script?: string;
}

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

/**
 * The CPU wrk is pinned to (`taskset -c`), or null. Left to the scheduler, wrk and the server
 * under test trade places on a 2-core machine and the bare baseline moved between ~105k and
 * ~170k req/s from run to run; with wrk on CPU 0 (the servers on another: SERVER_CPU) it
 * repeats within ~2 %. `BENCH_WRK_CPU=none` turns pinning off.
 */
export const WRK_CPU: string | null = pinnableCpu(Deno.env.get("BENCH_WRK_CPU") ?? "0");

/**
 * The CPU every server under test runs on (`taskset -c`): the one wrk is not on, so the
 * bare baseline and the service get the same single core (`BENCH_SERVER_CPU`, `none` to
 * leave them to the scheduler). Unpinned, the service's threads (main, four actors, V8's
 * helpers) sometimes put its main thread beside wrk on CPU 0: its CPU time per evaluate
 * went from ~35 µs to 60–95 µs in some runs and not others, while the one-threaded bare
 * server kept CPU 1 to itself. Pinned, actor round trips share the one core with the HTTP
 * thread, as in a container with one CPU.
 */
export const SERVER_CPU: string | null = pinnableCpu(
  Deno.env.get("BENCH_SERVER_CPU") ?? (WRK_CPU === "0" ? "1" : "none"),
);

/** `cpu` when a process can be pinned to it here (`taskset` works, 2+ CPUs), else null. */
function pinnableCpu(cpu: string): string | null {
  if (cpu === "none" || navigator.hardwareConcurrency < 2) return null;
  try {
    new Deno.Command("taskset", { args: ["-c", cpu, "true"] }).outputSync();
    return cpu;
  } catch {
    return null;
  }
}

/**
 * @throws {Error} when wrk is missing (install: `apt-get install -y wrk`) or fails.
 */
export async function wrk(url: string, o: WrkOptions): Promise<WrkResult> {
  const args = [
    ...(WRK_CPU === null ? [] : ["-c", WRK_CPU, "wrk"]),
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.durationS}s`,
    "--latency",
    ...(o.script ? ["-s", o.script] : []),
    url,
  ];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(WRK_CPU === null ? "wrk" : "taskset", {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new Error(`wrk is not installed (apt-get install -y wrk): ${err}`);
  }
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    return m ? ms(m[1], m[2]) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (sockErr ? sockErr.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0);
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text);
  const seconds = done
    ? Number(done[2]) * ({ us: 1e-6, ms: 1e-3, s: 1, m: 60 } as Record<string, number>)[done[3]]
    : NaN;
  return {
    rps,
    p50_ms: pct("50"),
    p99_ms: pct("99"),
    errors,
    requests: Number(done?.[1] ?? NaN),
    seconds,
  };
}
