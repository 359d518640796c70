/**
 * The SSRF address policy applied to the addresses a probed host name resolves to. The deny
 * list and the meaning of `HEALTH_CHECK_ALLOWED_NETWORKS` are those of `checkProbeTarget`
 * (lib/registry/model.ts); this file adds the IPv6 forms that carry an IPv4 address.
 */
import { checkProbeTarget, inCidr } from "../registry/model.ts";

/** The 16 bytes of an IPv6 address (no brackets, no zone), or null when `ip` is not one. */
function ipv6Bytes(ip: string): number[] | null {
  let host: string;
  try {
    // WHATWG URL validates the literal and serializes it in lower-case hex groups with at most
    // one "::" and never a dotted tail, which leaves little to parse.
    host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head, tail] = host.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? h
    : [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * Where IPv6 forms put an IPv4 address, as [prefix, byte offsets of the four octets]:
 * IPv4-mapped, IPv4-translated (SIIT), IPv4-compatible, NAT64 well-known prefix, NAT64
 * local-use prefix (RFC 8215, /48 to /96: every RFC 6052 position, as its length is the
 * operator's choice) and 6to4.
 */
const CARRIERS: [string, number[]][] = [
  ["::ffff:0:0/96", [12, 13, 14, 15]],
  ["::ffff:0:0:0/96", [12, 13, 14, 15]],
  ["::/96", [12, 13, 14, 15]],
  ["64:ff9b::/96", [12, 13, 14, 15]],
  ["64:ff9b:1::/48", [6, 7, 9, 10]],
  ["64:ff9b:1::/48", [7, 9, 10, 11]],
  ["64:ff9b:1::/48", [9, 10, 11, 12]],
  ["64:ff9b:1::/48", [12, 13, 14, 15]],
  ["2002::/16", [2, 3, 4, 5]],
];

/**
 * The IPv4 addresses (dotted) an IPv6 address carries in the forms a packet to it may reach
 * IPv4 through: `::ffff:169.254.1.1` (also written `::ffff:a9fe:101`), `::ffff:0:169.254.1.1`,
 * `::169.254.1.1`, `64:ff9b::169.254.1.1`, `64:ff9b:1::/48` and `2002:a9fe:101::/48`. Empty
 * for an IPv4 address and for IPv6 addresses outside those prefixes.
 */
export function embeddedIPv4(ip: string): string[] {
  if (!ip.includes(":")) return [];
  const bytes = ipv6Bytes(ip);
  if (!bytes) return [];
  const out = new Set<string>();
  for (const [prefix, at] of CARRIERS) {
    if (inCidr(ip, prefix)) out.add(at.map((i) => bytes[i]).join("."));
  }
  return [...out];
}

/** True when `checkProbeTarget` refuses a URL naming `ip` itself under `allowed`. */
function refused(ip: string, allowed: string[]): boolean {
  const literal = ip.includes(":") ? `[${ip}]` : ip;
  try {
    // checkProbeTarget holds the deny list and the allow rules; asking it keeps one copy.
    checkProbeTarget(`http://${literal}/`, "address", allowed);
    return false;
  } catch {
    return true;
  }
}

/**
 * The address the SSRF policy refuses in `ip` (a resolved IPv4 or IPv6 address), or null when
 * it may be probed: `ip` itself or an IPv4 address it carries (see {@link embeddedIPv4}) lies
 * in a link-local or cloud-metadata network (169.254.0.0/16, fe80::/10, fd00:ec2::254) that no
 * entry of `allowed` covers. An entry covering `ip` as written admits it whatever it carries.
 * Anything that is not an IP address (e.g. a zone-scoped `fe80::1%eth0`) is refused as itself.
 */
export function refusedAddress(ip: string, allowed: readonly string[]): string | null {
  if (!inCidr(ip, "0.0.0.0/0") && !inCidr(ip, "::/0")) return ip;
  const list = allowed.map((a) => a.trim());
  if (list.some((a) => inCidr(ip, a))) return null;
  for (const candidate of [ip, ...embeddedIPv4(ip)]) {
    if (refused(candidate, list)) return candidate;
  }
  return null;
}

const ALLOW_HINT = "allow it in HEALTH_CHECK_ALLOWED_NETWORKS to probe it";

/** The IP literal `url` names (IPv6 without brackets), or null for a host name. */
export function ipLiteral(url: URL): string | null {
  const h = url.hostname;
  if (h.startsWith("[")) return h.slice(1, -1);
  // WHATWG URL has already turned every numeric IPv4 form (0xa9fea9fe, 2852039166) dotted.
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(h) ? h : null;
}

/**
 * Why the SSRF policy refuses to probe `url` at `addresses` (what its host resolved to, or
 * its IP literal), or null when it may be probed: a refused cloud-metadata name, or any one
 * address refused by {@link refusedAddress}. A host name listed in `allowed` (exact,
 * case-insensitive) is admitted whatever it resolves to.
 */
export function probeRefusal(
  url: URL,
  addresses: readonly string[],
  allowed: readonly string[],
): string | null {
  const literal = ipLiteral(url);
  // A trailing dot names the same host in DNS and must not slip past the name rules.
  const host = literal ?? url.hostname.replace(/\.+$/, "");
  if (!literal) {
    if (allowed.some((a) => a.trim().toLowerCase().replace(/\.+$/, "") === host)) return null;
    try {
      // Without the port: only the name rule can refuse here.
      checkProbeTarget(`${url.protocol}//${url.hostname}/`, "url", [...allowed]);
    } catch {
      return `${host} is a cloud-metadata host name; ${ALLOW_HINT}`;
    }
  }
  for (const a of addresses) {
    const bad = refusedAddress(a, allowed);
    if (bad === null) continue;
    const carried = bad === a ? "" : ` (carrying ${bad})`;
    const what = literal ? `${a}${carried} is` : `${host} resolves to ${a}${carried},`;
    return `${what} a link-local or cloud-metadata address; ${ALLOW_HINT}`;
  }
  return null;
}
