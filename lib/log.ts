/**
 * Structured logging: one JSON object per line on stdout (stderr for errors), with a level
 * threshold from `LOG_LEVEL`. Callers must never pass secrets or tokens as fields.
 *
 * Lines are written in batches off the request path by a bounded {@link LogWriter} per stream
 * and per isolate (each actor's worker has its own), at most 10 ms after they are logged: a
 * slow stdout drops lines past 4 MiB
 * pending, counts them in `log_lines_dropped_total` and reports them in one `"log lines
 * dropped"` line once it catches up. Lifecycle and error lines start their write at once;
 * `unload` (also fired by `Deno.exit`) writes what is still buffered.
 */
import { LogWriter } from "./log_writer.ts";
import { logLinesDropped } from "./metrics.ts";

type Level = "debug" | "info" | "warn" | "error" | "lifecycle";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, lifecycle: 50 };
let threshold = ORDER.info;
let sink: ((line: string, level: Level) => void) | null = null;

// Many lines share a millisecond under load; toISOString is the costly part of a short line.
let tsMs = 0;
let tsText = "";
function timestamp(): string {
  const now = Date.now();
  if (now !== tsMs) {
    tsMs = now;
    tsText = new Date(now).toISOString();
  }
  return tsText;
}

function format(level: Level, msg: string, fields?: Record<string, unknown>): string {
  return JSON.stringify({ ts: timestamp(), level, msg, ...fields });
}

const droppedLine = (n: number) => format("warn", "log lines dropped", { dropped: n });
const onDrop = () => logLinesDropped.inc();
const out = new LogWriter({
  write: (p) => Deno.stdout.write(p),
  writeSync: (p) => Deno.stdout.writeSync(p),
  droppedLine,
  onDrop,
});
const err = new LogWriter({
  write: (p) => Deno.stderr.write(p),
  writeSync: (p) => Deno.stderr.writeSync(p),
  droppedLine,
  onDrop,
});
// Deno.exit() and the end of the event loop both dispatch `unload`; a worker terminated
// from outside does not, hence `log.flush()` before an actor reports it stopped.
globalThis.addEventListener("unload", () => {
  out.flushSync();
  err.flushSync();
});

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < threshold) return;
  write(format(level, msg, fields), level);
}

function write(line: string, level: Level): void {
  if (sink) sink(line, level);
  else if (level === "error") err.append(line, true);
  else out.append(line, level === "lifecycle");
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => emit("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => emit("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => emit("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => emit("error", msg, fields),
  /** Start, listen and stop lines: written whatever the level, tools wait for them. */
  lifecycle: (msg: string, fields?: Record<string, unknown>) => emit("lifecycle", msg, fields),
  /**
   * Writes `line`, already formatted as {@link format} would (`{"ts":…,"level":…,"msg":…,…}`),
   * when `level` is on: for the request log, whose lines are put together from pieces cached
   * per URL instead of serialized each time.
   */
  line(level: Exclude<Level, "lifecycle">, line: string): void {
    if (ORDER[level] >= threshold) write(line, level);
  },
  /** The `ts` field's text for a line logged now. */
  timestamp,
  /** Whether lines of `level` are written (build costly fields only when they are). */
  enabled(level: Level): boolean {
    return ORDER[level] >= threshold;
  },
  /** Sets the minimum level written. */
  setLevel(level: Exclude<Level, "lifecycle">): void {
    threshold = ORDER[level];
  },
  /** Redirects log lines (tests capture them); `null` restores stdout/stderr. */
  setSink(fn: ((line: string, level: Level) => void) | null): void {
    sink = fn;
  },
  /** Resolves once every line logged so far is written to stdout and stderr (or dropped). */
  flush(): Promise<void> {
    return Promise.all([out.flush(), err.flush()]).then(() => {});
  },
  /** Lines dropped so far in this isolate because stdout or stderr could not keep up. */
  dropped(): number {
    return out.dropped + err.dropped;
  },
};
