/**
 * Serving HTTP/1.1 requests that ask for an h2c upgrade (issue 15, item 1).
 *
 * The JDK's default `HttpClient` (HTTP/2 unless told otherwise) sends every cleartext request
 * with `Connection: Upgrade, HTTP2-Settings`, `Upgrade: h2c` and `HTTP2-Settings: …`. HTTP/1.1
 * says a server that does not take an upgrade ignores the header (RFC 9110 §7.8), but
 * `Deno.serve` (2.9) answers every such request that has a body — `Content-Length`, even
 * `Content-Length: 0`, or `Transfer-Encoding` — with `400`, an empty body and
 * `connection: close`, before any handler runs. The cause is in Deno's own HTTP/1.1 parser
 * (`libs/http_h1/parse.rs`, `HeaderInfo::body_kind`, v2.9.5 lines 380–387): a request with a
 * `connection: upgrade` token and an `Upgrade` header is framed as `BodyKind::Upgrade` unless
 * it declares a body, and then it is `ParseError::ConflictingContentLength` (a request-smuggling
 * guard added with the Deno-owned HTTP/1.1 path, denoland/deno#34446), which
 * `serve_http11_raw` (`ext/http/http_next.rs`, v2.9.5 line 4380) answers with
 * `write_h1_bad_request`. Every cleartext HTTP/1.1 connection takes that path; there is no
 * option or environment variable to turn it off, and `Deno.serve` cannot be handed a
 * connection whose first bytes were already read.
 *
 * So {@link serve} puts a small TCP front before `Deno.serve`: it accepts the connections,
 * relays each one to a `Deno.serve` on a loopback port, and follows the request framing
 * (head, `Content-Length` or chunked body) to find each request head. A head that asks for an
 * h2c upgrade goes on without `Upgrade`, `HTTP2-Settings` and their `Connection` tokens —
 * exactly the request a client that does not ask for HTTP/2 sends — and every other byte goes
 * through unchanged. Handlers see the client's address in `info.remoteAddr`, as with a bare
 * `Deno.serve`. The relay costs throughput (bench/h2c.ts, one CPU): 0.38–0.43x of a bare
 * `Deno.serve` on tiny requests, 0.35x on `GET /live`, 0.53x on a flag evaluation — the price
 * of the "make it the default anyway"; nothing that keeps Deno.serve's speed exists
 * in Deno 2.9 (no option, no way to hand it a connection after peeking at it).
 */

/** Where to listen; the subset of `Deno.ServeTcpOptions` the service uses. */
export interface H2cServeOptions {
  /** Defaults to `0.0.0.0`, as `Deno.serve`. */
  hostname?: string;
  /** Defaults to 8000, as `Deno.serve`; 0 picks a free port. */
  port?: number;
  /** Called once the front listens, with its address. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A request handler, as for `Deno.serve`. */
export type H2cHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Largest request head the front holds back while waiting for its end; past it the bytes go
 * through unchanged and `Deno.serve` answers as it does to any head that large. */
const MAX_HEAD = 64 * 1024;
/** Bytes read at once in each direction of a relay: two per connection, held while it is
 * open, so kept small (a bare `Deno.serve` connection holds a few KiB). */
const RELAY_BUFFER = 8 * 1024;
const CR = 13;
const LF = 10;

/** Framing states of the client-to-server direction. */
const HEAD = 0, LENGTH = 1, CHUNK_SIZE = 2, CHUNK_DATA = 3, CHUNK_END = 4, TRAILERS = 5;
/** Everything after this goes through unchanged: an upgraded or tunnelled connection, HTTP/2
 * with prior knowledge, or framing only `Deno.serve` can judge (it refuses it). */
const PASS = 6;

const scanDecoder = new TextDecoder("latin1");

/** The exact characters of `bytes` (one per byte); `TextDecoder("latin1")` is windows-1252. */
function byteString(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

function stringBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Index just past the empty line ending a head that starts at `from`, or -1. */
function headEnd(data: Uint8Array, from: number): number {
  const last = data.length - 1;
  for (let j = data.indexOf(LF, from); j !== -1 && j < last; j = data.indexOf(LF, j + 1)) {
    if (data[j + 1] === LF) return j + 2;
    if (data[j + 1] === CR && j + 2 <= last && data[j + 2] === LF) return j + 3;
  }
  return -1;
}

/** Value of the one header `name` (lower case, with the leading line break) in `lower`;
 * undefined when absent, null when it occurs more than once. */
function headerValue(lower: string, name: string): string | null | undefined {
  const at = lower.indexOf(name);
  if (at === -1) return undefined;
  if (lower.indexOf(name, at + name.length) !== -1) return null;
  const end = lower.indexOf("\n", at + name.length);
  return lower.slice(at + name.length, end === -1 ? undefined : end).trim();
}

function tokens(value: string): string[] {
  return value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "");
}

/**
 * The head without the h2c upgrade: no `Upgrade` and `HTTP2-Settings` lines, and no
 * `upgrade`/`http2-settings` tokens in `Connection` (the line goes when nothing is left).
 */
function withoutUpgrade(head: Uint8Array): Uint8Array {
  const lines = byteString(head).split("\n");
  const kept: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = colon === -1 ? "" : line.slice(0, colon).toLowerCase();
    if (name === "upgrade" || name === "http2-settings") continue;
    if (name === "connection") {
      const rest = line.slice(colon + 1).replace(/\r$/, "").split(",")
        .filter((t) => !["upgrade", "http2-settings", ""].includes(t.trim().toLowerCase()));
      if (rest.length === 0) continue;
      kept.push(`${line.slice(0, colon)}:${rest.join(",")}\r`);
      continue;
    }
    kept.push(line);
  }
  return stringBytes(kept.join("\n"));
}

/**
 * Follows the requests of one connection, client to server, and rewrites the heads that ask
 * for an h2c upgrade. Bytes that need no change are passed on as views of the input.
 */
class RequestFramer {
  #state = HEAD;
  #remaining = 0;
  #sizeDigits = 0;
  #inExtension = false;
  #lineEmpty = true;
  /** Start of a head that did not end in the previous input (copied). */
  #held: Uint8Array | null = null;

  /** The bytes to send on for `input`, in order. */
  feed(input: Uint8Array): Uint8Array[] {
    let data = input;
    if (this.#held !== null) {
      data = new Uint8Array(this.#held.length + input.length);
      data.set(this.#held);
      data.set(input, this.#held.length);
      this.#held = null;
    }
    const out: Uint8Array[] = [];
    let segment = 0;
    let i = 0;
    const n = data.length;
    while (i < n) {
      switch (this.#state) {
        case PASS:
          i = n;
          break;
        case LENGTH: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = HEAD;
          break;
        }
        case CHUNK_DATA: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = CHUNK_END;
          break;
        }
        case CHUNK_END:
          if (data[i++] === LF) this.#startChunkSize();
          break;
        case CHUNK_SIZE:
          this.#chunkSizeByte(data[i++]);
          break;
        case TRAILERS: {
          const b = data[i++];
          if (b === LF) {
            if (this.#lineEmpty) this.#state = HEAD;
            this.#lineEmpty = true;
          } else if (b !== CR) {
            this.#lineEmpty = false;
          }
          break;
        }
        case HEAD: {
          const end = headEnd(data, i);
          if (end === -1) {
            if (n - i > MAX_HEAD) {
              this.#state = PASS;
              break;
            }
            if (i > segment) out.push(data.subarray(segment, i));
            this.#held = data.slice(i);
            return out;
          }
          const rewritten = this.#head(data.subarray(i, end));
          if (rewritten !== null) {
            if (i > segment) out.push(data.subarray(segment, i));
            out.push(rewritten);
            segment = end;
          }
          i = end;
          break;
        }
      }
    }
    if (n > segment) out.push(data.subarray(segment, n));
    return out;
  }

  /** Sets the framing of the body after `head`; returns its replacement, or null to keep it. */
  #head(head: Uint8Array): Uint8Array | null {
    const lower = scanDecoder.decode(head).toLowerCase();
    const lineEnd = lower.search(/\S/) === -1 ? -1 : lower.indexOf("\n", lower.search(/\S/));
    if (lineEnd === -1) return null; // blank lines between requests
    const requestLine = lower.slice(lower.search(/\S/), lineEnd).trim();
    // HTTP/2 with prior knowledge, or not HTTP/1.x at all: Deno.serve's business.
    if (!/ http\/1\.[01]$/.test(requestLine) || requestLine.startsWith("connect ")) {
      this.#state = PASS;
      return null;
    }
    const upgrade = headerValue(lower, "\nupgrade:");
    const connection = lower.includes("\nconnection:")
      ? tokens(lower.match(/\nconnection:[^\n]*/g)!.map((l) => l.slice(12)).join(","))
      : [];
    const upgrading = upgrade !== undefined && connection.includes("upgrade");
    const h2c = upgrading && upgrade !== null && tokens(upgrade).includes("h2c");
    if (upgrading && !h2c) {
      // A real upgrade (a WebSocket): after the answer the connection may carry anything.
      this.#state = PASS;
      return null;
    }
    const te = headerValue(lower, "\ntransfer-encoding:");
    const cl = headerValue(lower, "\ncontent-length:");
    if (te !== undefined) {
      if (te === null || cl !== undefined || !/(^|,)\s*chunked$/.test(te)) {
        this.#state = PASS;
      } else {
        this.#startChunkSize();
      }
    } else if (cl !== undefined) {
      if (cl === null || !/^\d{1,15}$/.test(cl)) this.#state = PASS;
      else if (Number(cl) > 0) {
        this.#state = LENGTH;
        this.#remaining = Number(cl);
      }
    }
    return h2c ? withoutUpgrade(head) : null;
  }

  #startChunkSize(): void {
    this.#state = CHUNK_SIZE;
    this.#remaining = 0;
    this.#sizeDigits = 0;
    this.#inExtension = false;
  }

  #chunkSizeByte(b: number): void {
    if (b === LF) {
      if (this.#sizeDigits === 0) {
        this.#state = PASS; // malformed: Deno.serve refuses it
      } else if (this.#remaining === 0) {
        this.#state = TRAILERS;
        this.#lineEmpty = true;
      } else {
        this.#state = CHUNK_DATA;
      }
      return;
    }
    if (this.#inExtension || b === CR) return;
    if (b === 0x3b) { // ;
      this.#inExtension = true;
      return;
    }
    const digit = b >= 0x30 && b <= 0x39
      ? b - 0x30
      : (b | 0x20) >= 0x61 && (b | 0x20) <= 0x66
      ? (b | 0x20) - 0x57
      : -1;
    if (digit === -1 || this.#sizeDigits >= 12) {
      if (b !== 0x20 && b !== 0x09) this.#state = PASS;
      return;
    }
    this.#remaining = this.#remaining * 16 + digit;
    this.#sizeDigits++;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * Serves `handler` like `Deno.serve({hostname, port, onListen}, handler)`, and also answers
 * HTTP/1.1 requests that ask for an h2c upgrade, with or without a body, as if they did not
 * ask (see the module documentation for why `Deno.serve` alone refuses them).
 *
 * `shutdown()` stops accepting, lets in-flight requests finish and closes idle connections,
 * as `Deno.serve`'s does.
 */
export function serve(
  options: H2cServeOptions,
  handler: H2cHandler,
): Deno.HttpServer<Deno.NetAddr> {
  /** Local port of each relay connection to the inner server → the client it relays. */
  const peers = new Map<number, Deno.NetAddr>();
  const inner = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, info) => {
    const peer = peers.get(info.remoteAddr.port);
    if (peer === undefined) return handler(req, info);
    return handler(req, {
      remoteAddr: peer,
      get completed() {
        return info.completed;
      },
    });
  });
  const innerPort = inner.addr.port;
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 8000,
    transport: "tcp",
  });
  const open = new Set<Promise<void>>();

  const relay = async (client: Deno.TcpConn) => {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: innerPort });
    } catch {
      closeQuietly(client);
      return;
    }
    const key = (upstream.localAddr as Deno.NetAddr).port;
    peers.set(key, client.remoteAddr as Deno.NetAddr);
    // Small answers must not wait for Nagle's algorithm on either hop.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const up = async () => {
      const framer = new RequestFramer();
      const buf = new Uint8Array(RELAY_BUFFER);
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        for (const piece of framer.feed(buf.subarray(0, n))) await writeAll(upstream, piece);
      }
      // The client is done sending; its answers may still come.
      await upstream.closeWrite();
    };
    const down = async () => {
      const buf = new Uint8Array(RELAY_BUFFER);
      for (;;) {
        const n = await upstream.read(buf);
        if (n === null) break;
        await writeAll(client, buf.subarray(0, n));
      }
    };
    // The server side ending (`connection: close`, a shutdown, an error) ends the client's
    // connection too, and so does a client error; a client that only half-closes still gets
    // its answers.
    const ended = () => {
      closeQuietly(client);
      closeQuietly(upstream);
    };
    await Promise.all([up().catch(ended), down().then(ended, ended)]);
    peers.delete(key);
  };

  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const done = relay(client);
        open.add(done);
        done.finally(() => open.delete(done));
      }
    } catch { /* the listener was closed */ }
  })();

  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.(addr);

  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    stopping ??= (async () => {
      try {
        listener.close();
      } catch { /* closed already */ }
      await accepting;
      // Deno.serve lets in-flight requests finish and closes idle connections; the relays
      // end with them.
      await inner.shutdown();
      await Promise.all(open);
    })();
  const finished = (async () => {
    await inner.finished;
    await accepting;
    await Promise.all(open);
  })();

  return {
    addr,
    finished,
    shutdown,
    ref() {
      inner.ref();
      listener.ref();
    },
    unref() {
      inner.unref();
      listener.unref();
    },
    [Symbol.asyncDispose]: shutdown,
  };
}
