/**
 * A stand-in Redis server, for tests of what the service does while Redis is still coming
 * up. It speaks just enough RESP for ioredis to connect and PING: INFO (the ready check),
 * CLIENT, SELECT, PING and SUBSCRIBE; any other command gets an error reply, which ioredis
 * users here treat as a cache miss.
 */

export interface RedisStub extends AsyncDisposable {
  port: number;
  /** Commands received so far, upper-cased names. */
  commands: string[];
}

/**
 * Listens on 127.0.0.1. Connections are accepted at once but no reply leaves before
 * `slowStartMs` has passed since the stub started: a connection that is open and not ready.
 */
export function redisStub(opts: { slowStartMs?: number } = {}): RedisStub {
  const readyAt = Date.now() + (opts.slowStartMs ?? 0);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const commands: string[] = [];
  const enc = new TextEncoder();
  let closed = false;

  const reply = (args: string[]): string => {
    const name = (args[0] ?? "").toUpperCase();
    commands.push(name);
    switch (name) {
      case "INFO": {
        const info = "# Server\r\nredis_version:7.2.0\r\nloading:0\r\n";
        return `$${info.length}\r\n${info}\r\n`;
      }
      case "PING":
        return "+PONG\r\n";
      case "CLIENT":
      case "SELECT":
        return "+OK\r\n";
      case "SUBSCRIBE":
        return args.slice(1).map((ch, i) =>
          `*3\r\n$9\r\nsubscribe\r\n$${ch.length}\r\n${ch}\r\n:${i + 1}\r\n`
        ).join("");
      default:
        return `-ERR the stub does not implement ${name}\r\n`;
    }
  };

  /** Parses complete RESP arrays of bulk strings off the front of `buf`. */
  const parse = (buf: string): { commands: string[][]; rest: string } => {
    const out: string[][] = [];
    let at = 0;
    outer: while (at < buf.length) {
      let eol = buf.indexOf("\r\n", at);
      if (buf[at] !== "*" || eol < 0) break;
      const n = Number(buf.slice(at + 1, eol));
      let p = eol + 2;
      const args: string[] = [];
      for (let i = 0; i < n; i++) {
        eol = buf.indexOf("\r\n", p);
        if (eol < 0) break outer;
        const len = Number(buf.slice(p + 1, eol));
        if (buf.length < eol + 2 + len + 2) break outer;
        args.push(buf.slice(eol + 2, eol + 2 + len));
        p = eol + 2 + len + 2;
      }
      out.push(args);
      at = p;
    }
    return { commands: out, rest: buf.slice(at) };
  };

  const serve = async (conn: Deno.Conn) => {
    let buf = "";
    const dec = new TextDecoder();
    try {
      for await (const chunk of conn.readable) {
        buf += dec.decode(chunk, { stream: true });
        const parsed = parse(buf);
        buf = parsed.rest;
        if (parsed.commands.length === 0) continue;
        const wait = readyAt - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await conn.write(enc.encode(parsed.commands.map(reply).join("")));
      }
    } catch { /* the client went away */ }
  };

  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serve(conn).finally(() => conns.delete(conn));
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    commands,
    async [Symbol.asyncDispose]() {
      if (closed) return;
      closed = true;
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed by its reader */ }
      }
      await accepting;
    },
  };
}
