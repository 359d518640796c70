/**
 * Structured logging: one JSON object per line on stdout (stderr for errors), with a level
 * threshold from `LOG_LEVEL`. Callers must never pass secrets or tokens as fields.
 */
type Level = "debug" | "info" | "warn" | "error" | "lifecycle";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, lifecycle: 50 };
let threshold = ORDER.info;
let sink: ((line: string, level: Level) => void) | null = null;

function emit(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < threshold) return;
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
  if (sink) sink(line, level);
  else if (level === "error") console.error(line);
  else console.log(line);
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => emit("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => emit("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => emit("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => emit("error", msg, fields),
  /** Start, listen and stop lines: written whatever the level, tools wait for them. */
  lifecycle: (msg: string, fields?: Record<string, unknown>) => emit("lifecycle", msg, fields),
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
};
