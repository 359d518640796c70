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
 * So {@link serve} accepts the connections itself and answers each one's first request here,
 * as if it had not asked for the upgrade. A connection whose first request did not ask is
 * then handed to Deno's own server (`serveHttpOnConnection`, what `Deno.serve` runs per
 * connection), so every later request on it is served at `Deno.serve`'s speed. One whose
 * first request asked goes on through a relay to a `Deno.serve` on a loopback port, which
 * follows the request framing (head, `Content-Length` or chunked body) and removes the
 * upgrade headers from each head that carries them: the JDK's `HttpClient` and curl ask on
 * every request of the connection. Handlers see the client's address in `info.remoteAddr`
 * either way. The cost (bench/h2c.ts, docs/operations.md): the first request of each
 * connection, and every request of a client that asks for the upgrade.
 */

import { STATUS_TEXT } from "../problem.ts";

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
 * Relays whole connections to a `Deno.serve` on a loopback port (started at the first one),
 * rewriting the heads that ask for an h2c upgrade; handlers see each client's own address.
 */
class Relay {
  readonly #handler: H2cHandler;
  /** Local port of each relay connection to the inner server → the client it relays. */
  readonly #peers = new Map<number, Deno.NetAddr>();
  #inner: Deno.HttpServer<Deno.NetAddr> | null = null;

  constructor(handler: H2cHandler) {
    this.#handler = handler;
  }

  #server(): Deno.HttpServer<Deno.NetAddr> {
    return this.#inner ??= Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (
      req,
      info,
    ) => {
      const peer = this.#peers.get(info.remoteAddr.port);
      if (peer === undefined) return this.#handler(req, info);
      return this.#handler(req, {
        remoteAddr: peer,
        get completed() {
          return info.completed;
        },
      });
    });
  }

  /** Relays `client` until either side ends; `first` are bytes already read from it. */
  async relay(client: Deno.TcpConn, first?: Uint8Array): Promise<void> {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#server().addr.port });
    } catch {
      closeQuietly(client);
      return;
    }
    const key = (upstream.localAddr as Deno.NetAddr).port;
    this.#peers.set(key, client.remoteAddr as Deno.NetAddr);
    // Small answers must not wait for Nagle's algorithm on either hop.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const up = async () => {
      const framer = new RequestFramer();
      if (first !== undefined) {
        for (const piece of framer.feed(first)) await writeAll(upstream, piece);
      }
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
    this.#peers.delete(key);
  }

  /** Lets in-flight requests finish and closes idle connections, as `Deno.serve`'s does. */
  async shutdown(): Promise<void> {
    await this.#inner?.shutdown();
  }
}

/** The listener, its accept loop and shutdown, shared by both servers below. */
function listen(
  options: H2cServeOptions,
  onConnection: (conn: Deno.TcpConn) => Promise<void>,
  onShutdown: () => Promise<void>,
): Deno.HttpServer<Deno.NetAddr> {
  const listener = Deno.listen({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 8000,
    transport: "tcp",
  });
  const open = new Set<Promise<void>>();
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        const done = onConnection(client).catch(() => closeQuietly(client));
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
      await onShutdown();
      await Promise.all(open);
    })();
  const finished = (async () => {
    await accepting;
    await stopping;
    await Promise.all(open);
  })();
  return {
    addr,
    finished,
    shutdown,
    ref() {
      listener.ref();
    },
    unref() {
      listener.unref();
    },
    [Symbol.asyncDispose]: shutdown,
  };
}

/**
 * The relay alone: every connection crosses a loopback hop to an inner `Deno.serve`. The
 * fallback of {@link serve} when Deno's internal per-connection server is not there.
 */
export function relayServe(
  options: H2cServeOptions,
  handler: H2cHandler,
): Deno.HttpServer<Deno.NetAddr> {
  const relay = new Relay(handler);
  return listen(options, (client) => relay.relay(client), () => relay.shutdown());
}

/** `Deno.serve` on one accepted connection: Deno's internal `serveHttpOnConnection`. */
type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: H2cHandler,
  onError: (err: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void> };

function serveOnConnection(): ServeOnConnection | null {
  const deno = Deno as unknown as Record<symbol | string, unknown>;
  const internal = deno[deno.internal as symbol] as Record<string, unknown> | undefined;
  const fn = internal?.serveHttpOnConnection;
  return typeof fn === "function" ? fn as ServeOnConnection : null;
}

/** Largest first-request head read before the connection takes the relay. */
const FIRST_MAX = 64 * 1024;

/** What the first request of a connection is, when it is one {@link serve} answers itself. */
interface FirstRequest {
  method: string;
  target: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer> | null;
  close: boolean;
  /** It asked for an h2c upgrade (its client will ask again on every request). */
  h2c: boolean;
}

/**
 * The first request of a connection from `data` (all bytes read so far), or "more" when its
 * head is not all there yet, or null when the connection must take the relay (a body that
 * did not come with its head, chunked or `Expect` bodies, another upgrade, HTTP/2, more
 * bytes than the request, a head over {@link FIRST_MAX}).
 */
function firstRequest(data: Uint8Array): FirstRequest | "more" | null {
  const end = headEnd(data, 0);
  if (end === -1) return data.length > FIRST_MAX ? null : "more";
  const lines = byteString(data.subarray(0, end)).split(/\r?\n/);
  const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(lines[0]);
  if (!m || m[1] === "CONNECT") return null;
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) return null;
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      return null; // a value Headers refuses: Deno.serve's to judge
    }
  }
  const connection = tokens(headers.get("connection") ?? "");
  const upgrade = headers.get("upgrade");
  const h2c = upgrade !== null && connection.includes("upgrade");
  if (h2c) {
    if (!tokens(upgrade).includes("h2c")) return null; // a WebSocket: Deno.serve's
    headers.delete("upgrade");
    headers.delete("http2-settings");
  }
  headers.delete("http2-settings");
  const rest = connection.filter((t) => t !== "upgrade" && t !== "http2-settings");
  if (rest.length > 0) headers.set("connection", rest.join(", "));
  else headers.delete("connection");
  if (headers.has("transfer-encoding") || headers.has("expect")) return null;
  const cl = headers.get("content-length");
  if (cl !== null && !/^\d{1,15}$/.test(cl)) return null;
  const length = cl === null ? 0 : Number(cl);
  // A body not all there with its head takes the relay: Deno.serve and the service's body
  // reader time a stalled one out (408), which waiting here would not.
  if (data.length !== end + length) return null; // also pipelined: the relay follows framing
  const close = m[3] === "0" ? !rest.includes("keep-alive") : rest.includes("close");
  return {
    method: m[1],
    target: m[2],
    headers,
    body: length > 0 ? data.slice(end, end + length) : null,
    close,
    h2c,
  };
}

const encoder = new TextEncoder();

/**
 * Writes `res` to `conn` as HTTP/1.1: a finite body with its length, an event stream chunked
 * as it comes (aborting `abort` when the client is gone).
 */
async function writeResponse(
  conn: Deno.Conn,
  method: string,
  res: Response,
  close: boolean,
  abort: AbortController,
): Promise<void> {
  const noBody = method === "HEAD" || res.status === 204 || res.status === 304 ||
    (res.status >= 100 && res.status < 200);
  const streaming = !noBody && res.body !== null &&
    (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
  let head = `HTTP/1.1 ${res.status} ${STATUS_TEXT[res.status] ?? "Status"}\r\n`;
  for (const [k, v] of res.headers) {
    if (k === "content-length" || k === "transfer-encoding" || k === "connection") continue;
    head += `${k}: ${v}\r\n`;
  }
  if (close) head += "connection: close\r\n";
  if (streaming) {
    await writeAll(conn, encoder.encode(`${head}transfer-encoding: chunked\r\n\r\n`));
    const reader = res.body!.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const chunk = typeof value === "string" ? encoder.encode(value) : value as Uint8Array;
        if (chunk.length === 0) continue;
        await writeAll(conn, encoder.encode(`${chunk.length.toString(16)}\r\n`));
        await writeAll(conn, chunk);
        await writeAll(conn, encoder.encode("\r\n"));
      }
      await writeAll(conn, encoder.encode("0\r\n\r\n"));
    } catch (err) {
      abort.abort();
      reader.cancel().catch(() => {});
      throw err;
    }
    return;
  }
  const body = noBody || res.body === null ? null : new Uint8Array(await res.arrayBuffer());
  if (noBody) await res.body?.cancel();
  const length = body?.length ?? 0;
  const lengthLine = res.status === 204 || res.status === 304 || res.status < 200
    ? ""
    : method === "HEAD"
    ? (res.headers.has("content-length")
      ? `content-length: ${res.headers.get("content-length")}\r\n`
      : "")
    : `content-length: ${length}\r\n`;
  const out = encoder.encode(`${head}${lengthLine}\r\n`);
  if (body === null || body.length === 0) {
    await writeAll(conn, out);
    return;
  }
  const all = new Uint8Array(out.length + body.length);
  all.set(out);
  all.set(body, out.length);
  await writeAll(conn, all);
}

/**
 * Serves `handler` like `Deno.serve({hostname, port, onListen}, handler)`, and also answers
 * HTTP/1.1 requests that ask for an h2c upgrade, with or without a body, as if they did not
 * ask (see the module documentation for why `Deno.serve` alone refuses them).
 *
 * Each connection's first request is read and answered here. A connection whose first
 * request did not ask for the upgrade is then handed to Deno's own server for the rest of
 * its requests, at its speed (`Deno[Deno.internal].serveHttpOnConnection`; without it every
 * connection takes the relay). One whose first request asked goes on through the relay,
 * which follows every request: its client asks again on each (the JDK's `HttpClient` and
 * curl do). So does a connection whose first request this cannot answer alone (a body that did not
 * arrive with its head, a chunked or `Expect` body, a WebSocket, HTTP/2, pipelined requests,
 * a head over 64 KiB). A client that asked
 * for the upgrade with a body only on a later request of a connection would get Deno's 400:
 * none known to us does.
 *
 * `shutdown()` stops accepting, lets in-flight requests finish and closes idle connections,
 * as `Deno.serve`'s does.
 */
export function serve(
  options: H2cServeOptions,
  handler: H2cHandler,
): Deno.HttpServer<Deno.NetAddr> {
  const onConnection = serveOnConnection();
  if (onConnection === null) return relayServe(options, handler);
  const relay = new Relay(handler);
  let stopping = false;
  /**
   * One controller per handed-over connection, dropped when it ends: Deno's per-connection
   * server listens on its signal, and a shared one would keep a listener per connection ever
   * served, and on shutdown abort servers long closed ("Bad resource ID", uncaught).
   */
  const open = new Set<AbortController>();
  const onError = (err: unknown) => {
    console.error(err);
    return new Response("Internal Server Error", { status: 500 });
  };
  const connection = async (conn: Deno.TcpConn) => {
    conn.setNoDelay(true);
    let data = new Uint8Array(RELAY_BUFFER);
    let len = 0;
    let first: FirstRequest | "more" | null = "more";
    while (first === "more") {
      if (len === data.length) {
        const grown = new Uint8Array(Math.min(data.length * 2, FIRST_MAX + RELAY_BUFFER));
        grown.set(data);
        data = grown;
      }
      const n = await conn.read(data.subarray(len));
      if (n === null) {
        closeQuietly(conn);
        return;
      }
      len += n;
      first = firstRequest(data.subarray(0, len));
    }
    if (first === null) return relay.relay(conn, data.slice(0, len));
    // Not held for the connection's life (the body is a copy).
    data = new Uint8Array(0);
    const host = first.headers.get("host") ?? `${options.hostname ?? "localhost"}`;
    let url: string;
    try {
      url = new URL(first.target.startsWith("/") ? `http://${host}${first.target}` : first.target)
        .href;
    } catch {
      await writeAll(
        conn,
        encoder.encode(
          "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ),
      ).catch(() => {});
      closeQuietly(conn);
      return;
    }
    const abort = new AbortController();
    let completed!: () => void;
    const done = new Promise<void>((resolve) => completed = resolve);
    let res: Response;
    try {
      const req = new Request(url, {
        method: first.method,
        headers: first.headers,
        body: first.method === "GET" || first.method === "HEAD" ? null : first.body,
        signal: abort.signal,
      });
      res = await handler(req, {
        remoteAddr: conn.remoteAddr as Deno.NetAddr,
        completed: done,
      } as Deno.ServeHandlerInfo<Deno.NetAddr>);
    } catch (err) {
      res = onError(err);
    }
    try {
      await writeResponse(conn, first.method, res, first.close, abort);
    } catch {
      abort.abort();
      completed();
      closeQuietly(conn);
      return;
    }
    completed();
    if (first.close || stopping) {
      closeQuietly(conn);
      return;
    }
    // A client that asked for the upgrade asks again on every request of the connection
    // (the JDK's HttpClient and curl do): the relay follows them all.
    if (first.h2c) return relay.relay(conn);
    // The rest of the connection is Deno's own server's (its errors end the connection).
    const stop = new AbortController();
    open.add(stop);
    try {
      const server = onConnection(conn, stop.signal, handler, onError, () => {});
      await server.finished.catch(() => {});
    } finally {
      open.delete(stop);
    }
  };
  return listen(options, connection, async () => {
    stopping = true;
    for (const c of open) c.abort();
    await relay.shutdown();
  });
}
