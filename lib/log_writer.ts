/**
 * A bounded, batching line writer: the log's path to stdout and stderr. Appending a line never
 * waits for the stream; lines are joined and written with one call per
 * {@link LogWriterOptions.delayMs} (or as soon as {@link LogWriterOptions.batchBytes} are buffered), one write in flight at a time, so a busy
 * service makes few large writes instead of one per line. A stream slower than the lines
 * fills the buffer up to {@link LogWriterOptions.maxPendingBytes}; past it lines are dropped
 * and counted, and once the backlog is down to half the bound one line reports how many.
 */

/** Where a {@link LogWriter} writes and how much it may hold. */
export interface LogWriterOptions {
  /** Writes some of `p`, resolving with how many bytes were written (`Deno.stdout.write`). */
  write(p: Uint8Array): Promise<number>;
  /** Writes some of `p` synchronously (`Deno.stdout.writeSync`): the final flush at exit. */
  writeSync(p: Uint8Array): number;
  /**
   * Most bytes buffered and being written (counted as UTF-16 units plus one per newline,
   * which is the byte count for ASCII lines); a line that would pass it is dropped.
   * Default 4 MiB.
   */
  maxPendingBytes?: number;
  /** Buffered bytes that start a write at once instead of after `delayMs`. Default 64 KiB. */
  batchBytes?: number;
  /**
   * Milliseconds a line may wait for others to join its write. Default 10: each write costs a
   * wake of the thread that does it (~20–50 µs of CPU here); at 0 (the next 1 ms timer tick) a
   * loop logging 20 lines a tick spent 3–6 µs more a line than at 10 or 50.
   */
  delayMs?: number;
  /** The line reporting `n` lines dropped since the last report (written past the bound). */
  droppedLine(n: number): string;
  /** Called once per dropped line (a metrics counter). */
  onDrop?(): void;
}

const encoder = new TextEncoder();

/** Batches lines into few writes, bounded in memory; see the module comment. */
export class LogWriter {
  readonly #o: LogWriterOptions;
  readonly #max: number;
  readonly #batch: number;
  readonly #delay: number;
  #lines: string[] = [];
  #buffered = 0;
  #inFlight = 0;
  #writing: Promise<void> | null = null;
  #scheduled = false;
  /** A line someone waits for is buffered: write without waiting for the delay. */
  #urgent = false;
  #unreported = 0;
  #dropped = 0;
  /** The stream failed (closed pipe): every later line is dropped, not retried. */
  #broken = false;

  constructor(options: LogWriterOptions) {
    this.#o = options;
    this.#max = options.maxPendingBytes ?? 4 * 1024 * 1024;
    this.#batch = options.batchBytes ?? 64 * 1024;
    this.#delay = options.delayMs ?? 10;
  }

  /** Lines dropped so far: over the bound, or after the stream failed. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes buffered or being written. */
  get pending(): number {
    return this.#buffered + this.#inFlight;
  }

  /**
   * Queues `line` (without its newline). `urgent` starts the write now rather than after
   * `delayMs`, for lines someone waits for. Returns false when the line was dropped.
   */
  append(line: string, urgent = false): boolean {
    const size = line.length + 1;
    if (this.#broken || this.#buffered + this.#inFlight + size > this.#max) {
      this.#drop(1);
      return false;
    }
    this.#lines.push(line);
    this.#buffered += size;
    if (urgent) this.#urgent = true;
    // While a write is in flight, the loop in #drain decides when these lines go.
    if (this.#writing) return true;
    if (this.#urgent || this.#buffered >= this.#batch) this.#kick();
    else this.#schedule();
    return true;
  }

  /** Resolves once every line appended so far is written (or dropped). */
  async flush(): Promise<void> {
    while (this.#lines.length > 0 || this.#writing) {
      this.#kick();
      await this.#writing;
    }
  }

  /**
   * Writes what is buffered synchronously, for the last moment before the process exits
   * (the `unload` event). A write still in flight is not waited for: its bytes and these
   * may interleave only if that write is stuck on a full pipe.
   */
  flushSync(): void {
    if (this.#unreported > 0 && !this.#broken) this.#report();
    if (this.#lines.length === 0 || this.#broken) return;
    const bytes = encoder.encode(this.#lines.join("\n") + "\n");
    this.#lines = [];
    this.#buffered = 0;
    try {
      for (let off = 0; off < bytes.length;) off += this.#o.writeSync(bytes.subarray(off));
    } catch {
      this.#broken = true;
    }
  }

  readonly #onTimer = () => {
    this.#scheduled = false;
    this.#kick();
  };

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // A timer, not a microtask: the lines of every request answered meanwhile go out in one
    // write.
    setTimeout(this.#onTimer, this.#delay);
  }

  #kick(): void {
    if (!this.#writing && this.#lines.length > 0) this.#writing = this.#drain();
  }

  #take(): Uint8Array {
    const bytes = encoder.encode(this.#lines.join("\n") + "\n");
    this.#inFlight += this.#buffered;
    this.#lines = [];
    this.#buffered = 0;
    return bytes;
  }

  async #drain(): Promise<void> {
    try {
      // Once at least (a kick means "now"), then again only for what should not wait: back
      // to back writes of a line or two each would cost a thread wake per line.
      do {
        this.#urgent = false;
        const count = this.#lines.length;
        const bytes = this.#take();
        try {
          for (let off = 0; off < bytes.length;) {
            off += await this.#o.write(bytes.subarray(off));
          }
        } catch {
          // stdout closed (EPIPE) or failing: nowhere to report to, count and stop trying.
          this.#broken = true;
          this.#drop(count + this.#lines.length);
          this.#lines = [];
          this.#buffered = 0;
        }
        this.#inFlight = 0;
        if (this.#unreported > 0 && !this.#broken && this.#buffered <= this.#max / 2) {
          this.#report();
        }
      } while (this.#lines.length > 0 && (this.#urgent || this.#buffered >= this.#batch));
    } finally {
      this.#writing = null;
      if (this.#lines.length > 0) this.#schedule();
    }
  }

  #report(): void {
    // Past the bound on purpose: it is one short line, and it says what was lost.
    const line = this.#o.droppedLine(this.#unreported);
    this.#unreported = 0;
    this.#lines.push(line);
    this.#buffered += line.length + 1;
  }

  #drop(n: number): void {
    this.#dropped += n;
    if (!this.#broken) this.#unreported += n;
    for (let i = 0; i < n; i++) this.#o.onDrop?.();
  }
}
