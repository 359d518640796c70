/**
 * The network half of a health probe: resolving a host name, and one GET sent only to
 * addresses the caller has already checked, so no second DNS answer (DNS rebinding) can
 * redirect the connection after the SSRF check.
 */
import { lookup } from "node:dns/promises";
import { request as httpRequest } from "node:http";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";

/** Every address (IPv4 and IPv6, as text) a host name resolves to; rejects when none. */
export type Resolver = (hostname: string) => Promise<string[]>;

/** One GET to send; see {@link pinnedGet}. */
export interface PinnedRequest {
  /** http: or https: URL; its host name goes into `Host` and, for https, SNI and the cert check. */
  url: URL;
  /** The checked addresses of `url`'s host; the only ones connected to. */
  addresses: string[];
  headers: Record<string, string>;
  /** Aborts the exchange (the request rejects with the signal's reason). */
  signal: AbortSignal;
  /** PEM root certificates trusted in addition to the default store. */
  caCerts?: string[];
}

/** Sends one GET and answers the response status; see {@link pinnedGet}. */
export type Send = (r: PinnedRequest) => Promise<number>;

/**
 * Resolves `hostname` through the operating system's resolver (getaddrinfo: /etc/hosts,
 * nsswitch, then DNS — what a plain `fetch` would connect to), both families, in the
 * resolver's order.
 */
export const resolveHost: Resolver = async (hostname) => {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map((a) => a.address);
};

/**
 * Sends `GET r.url` over a new connection (no pooling) to one of `r.addresses`, never
 * resolving the host name itself: node's `lookup` hook hands the checked addresses to the
 * socket, while the request keeps the name for `Host`, SNI and certificate verification
 * (https). Answers the status once the headers arrive and discards the body; redirects are not
 * followed.
 *
 * @throws the network or TLS error, or the signal's reason when aborted.
 */
export const pinnedGet: Send = (r) =>
  new Promise<number>((resolve, reject) => {
    const pinned: LookupFunction = (_hostname, opts, cb) => {
      const wanted = Number(String(opts?.family ?? 0).replace(/^IPv/, ""));
      const list = r.addresses
        .map((address) => ({ address, family: address.includes(":") ? 6 : 4 }))
        .filter((a) => wanted !== 4 && wanted !== 6 || a.family === wanted);
      if (list.length === 0) cb(new Error(`no checked IPv${wanted} address`), []);
      else if (opts?.all) cb(null, list);
      else cb(null, list[0].address, list[0].family);
    };
    const send = r.url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(r.url, {
      method: "GET",
      headers: r.headers,
      agent: false,
      lookup: pinned,
      signal: r.signal,
      ...(r.caCerts ? { ca: r.caCerts } : {}),
    }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      // The status is all a probe needs; destroying frees the socket and the body.
      res.destroy();
      resolve(status);
    });
    req.on("error", (err) => reject(r.signal.aborted ? r.signal.reason : err));
    req.end();
  });
