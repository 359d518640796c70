/**
 * Bounded request bodies (issue 11, item 3): a body is read chunk by chunk with a cap, an
 * idle timeout and a share of a budget of bytes in flight across requests, and decoded as
 * strict UTF-8. Every refusal is a problem+json Response, never a thrown error.
 *
 * Why not `req.text()`: for a body still on the wire, Deno (2.9) reads the whole resource in
 * one op whose buffer is sized from the declared content-length, and grows the connection's
 * read buffer to the same size, both zero-filled up front: a `content-length: 1000000` that
 * trickles a byte holds ~1–2 MiB until the client gives up, and nothing ever times it out
 * (bench/slow_bodies.ts). Here the runtime is handed a small buffer (BYOB reads) that grows
 * only as bytes arrive, and a stalled body is cancelled. Only a body that declares at most
 * {@link WHOLE_READ_BYTES} is read whole (`bytes()`): its declaration bounds that buffer.
 *
 * Refusals carry `connection: close`, but Deno.serve (2.9) gives a handler no way to close
 * its connection: after the answer it reads and discards the rest of the declared body, with
 * no timeout, and closes only then or when the client does. That holds a socket and a few KiB
 * (no JavaScript, no budget), like a client that never finishes its headers.
 */
import type { Settings } from "../settings.ts";
import { type Problem, problem, problemResponse } from "../problem.ts";

/** Limits of a {@link BodyReader}. */
export interface BodyLimits {
  /** Largest body accepted, in bytes; a larger one is refused with 413. */
  maxBytes: number;
  /**
   * Milliseconds a body may go without a byte arriving before it is refused with 408 and its
   * stream cancelled. Enforced on a coarse clock: the refusal comes between this and 1.25
   * times this after the last byte.
   */
  idleTimeoutMs: number;
  /**
   * Bytes of bodies being read at once, across every request of the reader: a body with a
   * content-length reserves it before the first read; a chunked one reserves each chunk as
   * it arrives. A request that would go past it is refused with 503 and `Retry-After`.
   */
  budgetBytes: number;
}

/** What a refusal names: the request path (`instance`) and the request id; `answer`, when
 * given, shapes the refusal for a protocol with errors of its own (OFREP). */
export interface BodyContext {
  instance: string;
  requestId: string;
  answer?: (p: Problem, headers: Record<string, string>) => Response;
}

/** `Retry-After` of a 503 for a spent budget, in seconds: bodies in flight finish or stall out. */
export const BUDGET_RETRY_AFTER_S = 1;

/** The first buffer offered to the runtime; the connection's read buffer grows to match. */
const FIRST_READ_BYTES = 4 * 1024;
/**
 * A body that declares at most this many bytes is read whole by the runtime (`bytes()`), not
 * through a stream reader, whose stream, reader and promises cost ~6 µs a request in a bare
 * server (~2.5 µs of the service's evaluate: docs/benchmarks.md, issue 14). Its buffer, sized
 * from the declaration, is no larger than the stream path's first read.
 */
const WHOLE_READ_BYTES = FIRST_READ_BYTES;
/**
 * The smallest read offered: Deno 2.9 never completes a BYOB read of under ~5 bytes on a
 * chunked body (it cannot parse the chunk header into it), so the buffer keeps this much
 * room and may end up to this much past the cap; a body past the cap is refused all the same.
 */
const MIN_READ_BYTES = 1024;
/** The largest single read offered to the runtime, however large the body. */
const MAX_READ_BYTES = 64 * 1024;
/** Idle timeouts are checked this many times per timeout period. */
const TICKS_PER_TIMEOUT = 4;

const utf8 = new TextDecoder("utf-8", { fatal: true });
// Three times faster than the fatal one on valid text; only a U+FFFD needs the strict check.
const lenient = new TextDecoder("utf-8");

/**
 * The own symbol under which Deno keeps a stream's controller, found once on a probe stream
 * (null if streams are built otherwise). Asking `getReader({ mode: "byob" })` and catching
 * its TypeError costs ~4 µs a request; this costs a property read.
 */
const CONTROLLER: symbol | null = (() => {
  const probe = new ReadableStream({ type: "bytes" }) as unknown as Record<symbol, unknown>;
  return Object.getOwnPropertySymbols(probe).find((k) =>
    probe[k] instanceof ReadableByteStreamController
  ) ?? null;
})();

function isByteStream(stream: ReadableStream): boolean {
  if (CONTROLLER !== null) {
    return (stream as unknown as Record<symbol, unknown>)[CONTROLLER] instanceof
      ReadableByteStreamController;
  }
  try {
    stream.getReader({ mode: "byob" }).releaseLock();
    return true;
  } catch {
    return false;
  }
}

/** One body being read: its reservation, the sweep tick of its last progress, its reader. */
interface Read {
  /** The declared content-length, or -1 for a chunked body. */
  declared: number;
  reserved: number;
  seen: number;
  timedOut: boolean;
  reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader | null;
  /** Ends a whole read (which cannot be cancelled) at the idle timeout. */
  expire: (() => void) | null;
}

/** Limits for a {@link BodyReader} from the settings (`HTTP_BODY_*`) and the body cap. */
export function bodyLimits(
  settings: Pick<Settings, "HTTP_BODY_IDLE_TIMEOUT" | "HTTP_BODY_BUDGET_BYTES">,
  maxBytes: number,
): BodyLimits {
  return {
    maxBytes,
    idleTimeoutMs: Math.round(settings.HTTP_BODY_IDLE_TIMEOUT * 1000),
    budgetBytes: settings.HTTP_BODY_BUDGET_BYTES,
  };
}

/**
 * Reads request bodies within {@link BodyLimits}. One instance is shared by every request
 * of a server: it holds the budget and one coarse timer (started while bodies are being
 * read, stopped when none are). Dispose it to stop the timer at once.
 */
export class BodyReader {
  readonly #max: number;
  readonly #idleMs: number;
  readonly #budget: number;
  #inFlight = 0;
  readonly #reads = new Set<Read>();
  #tick = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @throws {RangeError} when a limit is not a positive integer (budget below the cap). */
  constructor(limits: BodyLimits) {
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v <= 0) {
        throw new RangeError(`BodyReader: ${name} must be a positive integer (got ${v})`);
      }
    }
    if (limits.budgetBytes < limits.maxBytes) {
      throw new RangeError(
        `BodyReader: budgetBytes (${limits.budgetBytes}) is below maxBytes (${limits.maxBytes})`,
      );
    }
    this.#max = limits.maxBytes;
    this.#idleMs = limits.idleTimeoutMs;
    this.#budget = limits.budgetBytes;
  }

  /** Bytes reserved by bodies being read now. */
  get inFlightBytes(): number {
    return this.#inFlight;
  }

  /**
   * The request body as text, or the refusal to answer with:
   * - 413 (`connection: close`) for a declared content-length over the cap, without reading,
   *   or when a chunked body passes the cap;
   * - 503 with `Retry-After` (`connection: close`) when the body would go past the budget;
   * - 408 (`connection: close`) when no byte arrives for the idle timeout; the body stream is
   *   cancelled;
   * - 400 naming field `body` when it is not valid UTF-8, or could not be read (the client
   *   went away).
   * A body-less request reads as "". Never throws; every exit releases its reservation.
   */
  async read(req: Request, ctx: BodyContext): Promise<string | Response> {
    let declared = -1;
    const length = req.headers.get("content-length");
    if (length !== null) {
      // Deno.serve has already refused a malformed content-length; a Request built by hand
      // (app.request() in tests) has not.
      declared = /^\d{1,16}$/.test(length) ? Number(length) : NaN;
      if (Number.isNaN(declared)) {
        return refuse(400, "The content-length header is not a length in bytes", ctx, {
          errors: [{ field: "content-length", in: "header", message: "is not a length" }],
        });
      }
      if (declared > this.#max) return this.#tooLarge(ctx);
    }
    // `req.body` makes the stream, which costs the whole read its fast path: not for a
    // small declared body.
    const whole = declared > 0 && declared <= WHOLE_READ_BYTES;
    const stream = whole ? null : req.body;
    if ((!whole && stream === null) || declared === 0) return "";
    if (declared > 0) {
      if (this.#inFlight + declared > this.#budget) return this.#overBudget(ctx);
      this.#inFlight += declared;
    }
    const r: Read = {
      declared,
      reserved: Math.max(declared, 0),
      seen: this.#tick,
      timedOut: false,
      reader: null,
      expire: null,
    };
    this.#watch(r);
    try {
      // A body that arrived with its headers is handed over as an in-memory stream that is
      // not a byte stream, one chunk away from done; one still on the wire is a byte stream.
      const out = stream === null
        ? await this.#readWhole(r, req, ctx)
        : isByteStream(stream)
        ? await this.#readByob(r, stream.getReader({ mode: "byob" }), ctx)
        : await this.#readChunks(r, stream.getReader(), ctx);
      if (out instanceof Response) return out;
      try {
        const text = lenient.decode(out);
        return text.includes("\uFFFD") ? utf8.decode(out) : text;
      } catch {
        return refuse(400, "The request body is not valid UTF-8", ctx, {
          errors: [{ field: "body", in: "body", message: "is not valid UTF-8" }],
        });
      }
    } finally {
      this.#inFlight -= r.reserved;
      this.#reads.delete(r);
    }
  }

  /** Stops the idle timer; bodies still being read are no longer timed. */
  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Reads a small declared body in one piece. The runtime's read cannot be cancelled: at the
   * idle timeout the answer is a 408 all the same, and the runtime goes on reading until the
   * client sends the rest or goes away, as after any refusal. Progress is not seen here, so
   * the whole body must arrive within the idle timeout.
   */
  async #readWhole(r: Read, req: Request, ctx: BodyContext): Promise<Uint8Array | Response> {
    const { promise: expired, resolve } = Promise.withResolvers<undefined>();
    r.expire = () => resolve(undefined);
    let got: Uint8Array | undefined;
    try {
      got = await Promise.race([req.bytes(), expired]);
    } catch {
      return this.#unreadable(ctx);
    }
    // Deno.serve closes the connection of a request whose body is still being read, and says
    // so (`connection: close`) itself.
    if (got === undefined || r.timedOut) return this.#timedOut(ctx, true);
    // A Request built by hand may carry a content-length its body does not have.
    if (got.byteLength > r.declared) return this.#overrun(ctx);
    if (got.byteLength < r.declared) return this.#unreadable(ctx);
    return got;
  }

  /** Reads into one buffer that grows as bytes arrive; the runtime never sizes it. */
  async #readByob(
    r: Read,
    reader: ReadableStreamBYOBReader,
    ctx: BodyContext,
  ): Promise<Uint8Array | Response> {
    r.reader = reader;
    const limit = r.declared >= 0 ? r.declared : this.#max;
    let buf: Uint8Array = new Uint8Array(Math.min(limit + MIN_READ_BYTES, FIRST_READ_BYTES));
    let len = 0;
    while (true) {
      if (buf.length - len < MIN_READ_BYTES) {
        const size = Math.min(
          Math.max(buf.length * 2, len + MIN_READ_BYTES),
          limit + MIN_READ_BYTES,
        );
        const next = new Uint8Array(size);
        next.set(buf.subarray(0, len));
        buf = next;
      }
      let got: ReadableStreamReadResult<Uint8Array>;
      try {
        got = await reader.read(buf.subarray(len, Math.min(buf.length, len + MAX_READ_BYTES)));
      } catch {
        return this.#stop(r, this.#unreadable(ctx));
      }
      if (r.timedOut) return this.#timedOut(ctx);
      // The read transferred the buffer; the result views the same bytes under a new owner.
      if (got.value !== undefined) buf = new Uint8Array(got.value.buffer);
      if (got.done) break;
      const n = got.value.byteLength;
      len += n;
      if (len > limit) {
        return this.#stop(r, r.declared >= 0 ? this.#overrun(ctx) : this.#tooLarge(ctx));
      }
      if (!this.#reserve(r, n)) return this.#stop(r, this.#overBudget(ctx));
      r.seen = this.#tick;
    }
    if (r.declared >= 0 && len < r.declared) return this.#unreadable(ctx);
    return buf.subarray(0, len);
  }

  /** Reads a stream that is not a byte stream (in practice, a body already in memory). */
  async #readChunks(
    r: Read,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    ctx: BodyContext,
  ): Promise<Uint8Array | Response> {
    r.reader = reader;
    const chunks: Uint8Array[] = [];
    let len = 0;
    while (true) {
      let got: ReadableStreamReadResult<Uint8Array>;
      try {
        got = await reader.read();
      } catch {
        return this.#stop(r, this.#unreadable(ctx));
      }
      if (r.timedOut) return this.#timedOut(ctx);
      if (got.done) break;
      const chunk = got.value;
      if (!(chunk instanceof Uint8Array)) return this.#stop(r, this.#unreadable(ctx));
      len += chunk.byteLength;
      if (len > this.#max) return this.#stop(r, this.#tooLarge(ctx));
      if (r.declared >= 0 && len > r.declared) return this.#stop(r, this.#overrun(ctx));
      if (!this.#reserve(r, chunk.byteLength)) return this.#stop(r, this.#overBudget(ctx));
      // A small view may pin a large buffer (a byte stream's 64 KiB reads): keep a copy.
      chunks.push(chunk.byteLength * 2 < chunk.buffer.byteLength ? chunk.slice() : chunk);
      r.seen = this.#tick;
    }
    if (r.declared >= 0 && len < r.declared) return this.#unreadable(ctx);
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(len);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }

  /** Reserves `n` more bytes of a chunked body; a declared length was reserved up front. */
  #reserve(r: Read, n: number): boolean {
    if (r.declared >= 0) return true;
    if (this.#inFlight + n > this.#budget) return false;
    this.#inFlight += n;
    r.reserved += n;
    return true;
  }

  #watch(r: Read): void {
    this.#reads.add(r);
    if (this.#timer !== undefined) return;
    const period = Math.max(1, Math.floor(this.#idleMs / TICKS_PER_TIMEOUT));
    // Not unref'd: a body being read is work pending; the sweep stops once none is.
    this.#timer = setInterval(() => this.#sweep(), period);
  }

  #sweep(): void {
    this.#tick++;
    if (this.#reads.size === 0) {
      this[Symbol.dispose]();
      return;
    }
    for (const r of this.#reads) {
      if (this.#tick - r.seen > TICKS_PER_TIMEOUT) {
        r.timedOut = true;
        this.#reads.delete(r);
        cancel(r);
      }
    }
  }

  /** Cancels the body (the runtime stops reading it) and answers `res`. */
  #stop(r: Read, res: Response): Response {
    cancel(r);
    return res;
  }

  #tooLarge(ctx: BodyContext): Response {
    return refuse(413, `Request body is larger than ${this.#max} bytes`, ctx, {}, {
      connection: "close",
    });
  }

  #overBudget(ctx: BodyContext): Response {
    return refuse(
      503,
      "The server is reading as many request bodies as it can; retry shortly",
      ctx,
      {},
      { "retry-after": String(BUDGET_RETRY_AFTER_S), connection: "close" },
    );
  }

  /**
   * `whole`: a whole read's (the body did not arrive within the timeout; the runtime adds
   * `connection: close` itself).
   */
  #timedOut(ctx: BodyContext, whole = false): Response {
    const s = this.#idleMs / 1000;
    return refuse(
      408,
      whole
        ? `The request body did not arrive whole within ${s} s`
        : `No byte of the request body arrived for ${s} s`,
      ctx,
      // lib/problem.ts has no title for 408 yet.
      {},
      whole ? {} : { connection: "close" },
    );
  }

  #overrun(ctx: BodyContext): Response {
    return refuse(400, "The request body is longer than its content-length", ctx, {
      errors: [{ field: "body", in: "body", message: "is longer than its content-length" }],
    }, { connection: "close" });
  }

  #unreadable(ctx: BodyContext): Response {
    return refuse(400, "The request body ended before it was complete", ctx, {
      errors: [{ field: "body", in: "body", message: "could not be read to its end" }],
    }, { connection: "close" });
  }
}

/** Cancels a read's stream (a pending read then resolves as done), or ends a whole read. */
function cancel(r: Read): void {
  r.reader?.cancel().catch(() => {});
  r.expire?.();
}

function refuse(
  status: number,
  detail: string,
  ctx: BodyContext,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  const p = problem(status, detail, {
    instance: ctx.instance,
    request_id: ctx.requestId,
    ...extra,
  });
  const h = { "x-request-id": ctx.requestId, ...headers };
  return ctx.answer ? ctx.answer(p, h) : problemResponse(p, h);
}
