/**
 * A raw HTTP/1.1 client over TCP for tests that must send a request target exactly as
 * written: `fetch` and `new Request()` normalise `/./`, `/x/../` and some escapes away,
 * Deno's server does not.
 */

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Sends one request (`Connection: close`) and reads the answer: the whole body for a
 * `Content-Length` or chunked answer, the headers only for an event stream.
 * @throws {Error} when the server closes before a status line.
 */
export async function rawRequest(
  port: number,
  req: { method: string; target: string; headers?: Record<string, string>; body?: string },
): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const headers: Record<string, string> = {
      host: `127.0.0.1:${port}`,
      connection: "close",
      ...req.headers,
    };
    const body = req.body === undefined ? undefined : enc.encode(req.body);
    if (body) headers["content-length"] = String(body.length);
    let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    await conn.write(enc.encode(head + "\r\n"));
    if (body) await conn.write(body);
    return await readAnswer(conn);
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

async function readAnswer(conn: Deno.Conn): Promise<RawAnswer> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(64 * 1024);
  const more = async (): Promise<boolean> => {
    const n = await conn.read(chunk);
    if (n === null) return false;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    return true;
  };
  let end = -1;
  while ((end = indexOf(buf, "\r\n\r\n")) < 0) {
    if (!(await more())) throw new Error("connection closed before the answer's headers");
  }
  const lines = dec.decode(buf.subarray(0, end)).split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const start = end + 4;
  if ((headers["content-type"] ?? "").startsWith("text/event-stream")) {
    return { status, headers, body: "" };
  }
  if (headers["content-length"] !== undefined) {
    const length = Number(headers["content-length"]);
    while (buf.length - start < length && await more());
    return { status, headers, body: dec.decode(buf.subarray(start, start + length)) };
  }
  if (headers["transfer-encoding"] === "chunked") {
    while (indexOf(buf, "\r\n0\r\n\r\n", start - 2) < 0 && await more());
    return { status, headers, body: dechunk(buf.subarray(start)) };
  }
  while (await more());
  return { status, headers, body: dec.decode(buf.subarray(start)) };
}

function dechunk(b: Uint8Array): string {
  const parts: Uint8Array[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = indexOf(b, "\r\n", i);
    if (eol < 0) break;
    const size = parseInt(dec.decode(b.subarray(i, eol)), 16);
    if (!size) break;
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return parts.map((p) => dec.decode(p)).join("");
}

function indexOf(b: Uint8Array, s: string, from = 0): number {
  const needle = enc.encode(s);
  outer: for (let i = Math.max(0, from); i <= b.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
