/**
 * Raw HTTP/1.1 clients for body-limit tests and bench/slow_bodies.ts: exchanges written byte
 * for byte (a body can stall after its headers), stalled bodies by the thousand, and the
 * fixture server (tests/fixtures/body_server.ts) in a child process whose RSS can be read.
 * Works against any server: pass the port of one that serves buildApp() as well.
 */
import { spawnChild } from "../bench/service.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A response read off a raw connection. */
export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection (after the response, within `closeWaitMs`). */
  closedByServer: boolean;
}

/** What to write: text, bytes, or a pause in milliseconds. */
export type Part = string | Uint8Array | { pauseMs: number };

/**
 * Writes `parts` on a new connection to 127.0.0.1:`port` and reads until the response is
 * complete; then, when `closeWaitMs` is given, waits up to that long for the server to close
 * the connection. Closes the connection itself at the end.
 * @throws {Error} when no complete response arrives within `waitMs`.
 */
export async function exchange(
  port: number,
  parts: Part[],
  opts: { waitMs?: number; closeWaitMs?: number } = {},
): Promise<RawResponse> {
  const { waitMs = 10_000, closeWaitMs = 0 } = opts;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let bytes = new Uint8Array(0);
  let closedByServer = false;
  let timer = setTimeout(() => conn.close(), waitMs);
  try {
    const reading = (async () => {
      const buf = new Uint8Array(16 * 1024);
      while (!complete(bytes)) {
        const n = await conn.read(buf);
        if (n === null) {
          closedByServer = true;
          return;
        }
        const next = new Uint8Array(bytes.length + n);
        next.set(bytes);
        next.set(buf.subarray(0, n), bytes.length);
        bytes = next;
      }
    })().catch(() => {});
    for (const p of parts) {
      if (typeof p === "object" && "pauseMs" in p) {
        await new Promise((r) => setTimeout(r, p.pauseMs));
        continue;
      }
      // A server that answered early may stop reading; the answer is what counts.
      const ok = await conn.write(typeof p === "string" ? enc.encode(p) : p).then(
        () => true,
        () => false,
      );
      if (!ok) break;
    }
    await reading;
    if (!closedByServer && complete(bytes) && closeWaitMs > 0) {
      clearTimeout(timer);
      timer = setTimeout(() => conn.close(), closeWaitMs);
      closedByServer = await conn.read(new Uint8Array(1024)).then((n) => n === null, () => false);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
  const parsed = parse(bytes);
  if (!parsed) throw new Error(`No complete response within ${waitMs} ms: ${dec.decode(bytes)}`);
  return { ...parsed, closedByServer };
}

function parse(bytes: Uint8Array): Omit<RawResponse, "closedByServer"> | null {
  const text = dec.decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    const name = l.slice(0, i).trim().toLowerCase();
    const value = l.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const body = text.slice(end + 4);
  const length = Number(headers["content-length"] ?? NaN);
  if (!Number.isNaN(length) && enc.encode(body).length < length) return null;
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

function complete(bytes: Uint8Array): boolean {
  return parse(bytes) !== null;
}

/** Request head of a POST with a content-length (and nothing of its body). */
export function postHead(path: string, length: number): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n` +
    `content-length: ${length}\r\n\r\n`;
}

/** Request head of a chunked POST. */
export function chunkedHead(path: string): string {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n`;
}

/** One chunk of a chunked body. */
export function chunk(data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  const head = enc.encode(`${bytes.length.toString(16)}\r\n`);
  const out = new Uint8Array(head.length + bytes.length + 2);
  out.set(head);
  out.set(bytes, head.length);
  out.set(enc.encode("\r\n"), head.length + bytes.length);
  return out;
}

/** Connections that sent a POST head declaring `declared` bytes and then only `sent` bytes. */
export interface StalledBodies {
  /** How many were opened. */
  count: number;
  /** Sends `n` more bytes of body on every connection. */
  trickle(n: number): Promise<void>;
  /** How many connections were answered within `waitMs`, by status ("none": no answer). */
  statuses(waitMs: number): Promise<Record<string, number>>;
  close(): void;
  /** Closes them (`using stalled = await stallBodies(…)`). */
  [Symbol.dispose](): void;
}

/** Opens `count` connections, each sending a POST head with `declared` and one byte. */
export async function stallBodies(
  port: number,
  count: number,
  declared: number,
  path = "/slow",
): Promise<StalledBodies> {
  const conns: Deno.Conn[] = [];
  const head = enc.encode(postHead(path, declared) + "{");
  try {
    for (let i = 0; i < count; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(c);
      await c.write(head);
    }
  } catch (err) {
    for (const c of conns) c.close();
    throw err;
  }
  const close = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
  };
  return {
    count,
    async trickle(n: number) {
      const bytes = enc.encode(" ".repeat(n));
      await Promise.all(conns.map((c) => c.write(bytes).catch(() => 0)));
    },
    async statuses(waitMs: number) {
      const counts: Record<string, number> = {};
      const deadline = new Promise<null>((r) => setTimeout(() => r(null), waitMs));
      await Promise.all(conns.map(async (c) => {
        const buf = new Uint8Array(64);
        const n = await Promise.race([c.read(buf).catch(() => null), deadline]);
        const key = n ? dec.decode(buf.subarray(0, n)).split(" ")[1] ?? "?" : "none";
        counts[key] = (counts[key] ?? 0) + 1;
      }));
      return counts;
    },
    close,
    [Symbol.dispose]() {
      close();
    },
  };
}

/** Resident set size of process `pid`, in MiB (Linux). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  if (!m) throw new Error(`No VmRSS for process ${pid}`);
  return Number(m[1]) / 1024;
}

/** Latencies in ms of `count` sequential GETs of `url` (each body read to its end). */
export async function getLatencies(url: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
    out.push(performance.now() - t0);
  }
  return out;
}

/** The `p`-th percentile (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** The fixture body server in a child process. */
export interface BodyServer {
  pid: number;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts tests/fixtures/body_server.ts with the runtime flags of `deno task start`: `reader`
 * reads bodies with a BodyReader, `text` with `req.text()`. `env`: BODY_MAX_BYTES,
 * BODY_IDLE_MS, BODY_BUDGET_BYTES.
 */
export async function spawnBodyServer(
  mode: "reader" | "text",
  env: Record<string, string> = {},
): Promise<BodyServer> {
  const c = await spawnChild("tests/fixtures/body_server.ts", env, '"port"', [mode]);
  return { pid: c.child.pid, port: c.port, url: c.url, stop: c.stop };
}
