/**
 * One health probe of one registered instance: its `health_check_url` plus the
 * `HEALTH_CHECK_ADDITIONAL_ENDPOINTS` on its `service_url`, with a per-attempt timeout and
 * retries with exponential backoff. Every attempt resolves the host, applies the SSRF address
 * policy to every address and connects only to those addresses. Scheduling and status
 * bookkeeping belong to the caller.
 */
import { ipLiteral, probeRefusal } from "./address_policy.ts";
import { pinnedGet, resolveHost, type Resolver, type Send } from "./pinned_get.ts";

/** How a probe behaves; durations in milliseconds (settings hold seconds, the caller converts). */
export interface ProbeSettings {
  /** Per HTTP attempt (`HEALTH_CHECK_TIMEOUT`). */
  timeoutMs: number;
  /** Extra rounds after the first failing one (`HEALTH_CHECK_MAX_RETRIES`). */
  maxRetries: number;
  /** Delay before the first retry (`HEALTH_CHECK_INITIAL_RETRY_DELAY`). */
  initialRetryDelayMs: number;
  /** Upper bound of any retry delay (`HEALTH_CHECK_MAX_RETRY_DELAY`). */
  maxRetryDelayMs: number;
  /** Multiplier per retry (`HEALTH_CHECK_RETRY_BACKOFF`): delay_n = min(initial * backoff^n, max). */
  backoff: number;
  /** Paths probed under `service_url` (origin + its path), e.g. `["/ready", "/live"]`. */
  additionalEndpoints: string[];
  /**
   * `HEALTH_CHECK_ALLOWED_NETWORKS`: CIDRs, addresses or exact host names probed despite the
   * link-local/metadata guard. Absent means none (the guard fails closed).
   */
  allowedNetworks?: string[];
}

/** The instance fields a probe needs. */
export interface ProbeTarget {
  /** Probed as given; empty means `service_url` + `/health` (the registry's default). */
  health_check_url: string;
  service_url: string;
}

/** What one endpoint answered in the last round. */
export interface EndpointResult {
  /** The probed URL with credentials removed and query values masked. */
  url: string;
  /** Counts as passing (an additional endpoint answering 404 passes: "not provided"). */
  ok: boolean;
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  /** Why there was no usable answer (network error, timeout, redirect); never carries secrets. */
  error?: string;
  /** Time until the response headers (or the failure). */
  ms: number;
}

/** Outcome of {@link probe}: the last round's view. */
export interface ProbeResult {
  healthy: boolean;
  /** ISO time the result was settled. */
  checked_at: string;
  /** Rounds made (1 + retries used). */
  attempts: number;
  endpoints: EndpointResult[];
  /** Why unhealthy, e.g. `"http://x/health answered 500"`; absent when healthy. */
  reason?: string;
}

/**
 * How long a probe's last round took, in milliseconds (0.1 ms steps): its slowest endpoint,
 * as the endpoints of a round run in parallel; null when the round probed nothing.
 */
export function roundMs(r: Pick<ProbeResult, "endpoints">): number | null {
  return r.endpoints.length === 0 ? null : Math.max(...r.endpoints.map((e) => e.ms));
}

/** Sleeps `ms`, returning early (without throwing) when `signal` aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** The I/O {@link probe} does, replaceable in tests; each defaults to the real one. */
export interface ProbeOptions {
  /** Waits between rounds (default: a timer). */
  sleep?: Sleep;
  /** Resolves a host name to all its addresses (default {@link resolveHost}: getaddrinfo). */
  resolve?: Resolver;
  /** Sends one GET to checked addresses (default {@link pinnedGet}). */
  send?: Send;
}

/** Endpoint results refused by the address policy: retrying them cannot help. */
const refusals = new WeakSet<EndpointResult>();

const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

/** The delay before retry `n` (0-based). */
export function retryDelayMs(s: ProbeSettings, n: number): number {
  const d = Math.min(s.initialRetryDelayMs * Math.pow(s.backoff, n), s.maxRetryDelayMs);
  return Number.isFinite(d) && d > 0 ? d : 0;
}

/**
 * Probes health_check_url (2xx = ok) and every additional endpoint on service_url (2xx ok,
 * 404 = "not provided" → ignored, anything else or a network error/timeout = failure). The
 * instance is healthy when all probed endpoints are ok. A failing round is retried up to
 * maxRetries times with exponential backoff (sleep honours `signal`); the result is the last
 * round's. Never throws (aborted → unhealthy with reason "aborted"). Redirects are not followed
 * (3xx = failure) so a probe cannot be bounced to another host. Response bodies are discarded.
 *
 * SSRF: each attempt resolves the endpoint's host name (all addresses, /etc/hosts included)
 * and refuses the endpoint, without connecting and without retrying, when the name is a
 * metadata name or ANY address is link-local or cloud metadata, directly or carried in an
 * IPv6 form (IPv4-mapped, -compatible, 6to4, NAT64), unless `s.allowedNetworks` allows it. The
 * connection then goes to those checked addresses only, so a second DNS answer cannot
 * redirect it; the name still gives `Host`, SNI and the certificate check.
 */
export async function probe(
  t: ProbeTarget,
  s: ProbeSettings,
  signal?: AbortSignal,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  const sleep = options.sleep ?? defaultSleep;
  const io: AttemptIo = {
    resolve: options.resolve ?? resolveHost,
    send: options.send ?? pinnedGet,
    allowed: s.allowedNetworks ?? [],
    timeoutMs: s.timeoutMs,
  };
  let attempts = 0;
  let endpoints: EndpointResult[] = [];
  try {
    const plan = planEndpoints(t, s.additionalEndpoints);
    const retries = Math.max(0, Math.floor(Number(s.maxRetries) || 0));
    for (let n = 0;; n++) {
      if (signal?.aborted) return aborted(attempts, endpoints);
      attempts++;
      // Endpoints of one round run in parallel: a round then costs one timeout at worst,
      // whatever the number of additional endpoints.
      endpoints = await Promise.all(plan.map((p) => attempt(p, io, signal)));
      if (signal?.aborted) return aborted(attempts, endpoints);
      if (endpoints.every((e) => e.ok)) {
        return { healthy: true, checked_at: new Date().toISOString(), attempts, endpoints };
      }
      if (n >= retries || endpoints.some((e) => refusals.has(e))) break;
      // A custom sleep may reject on abort; either way the check above turns it into "aborted".
      await sleep(retryDelayMs(s, n), signal).catch(() => {});
    }
  } catch (err) {
    // attempt() never throws; this catches malformed input (a target that is not an object)
    // and a custom sleep throwing synchronously, so "never throws" holds for callers.
    if (signal?.aborted) return aborted(attempts, endpoints);
    return {
      healthy: false,
      checked_at: new Date().toISOString(),
      attempts,
      endpoints,
      reason: `probe failed: ${describeError(err)}`,
    };
  }
  return {
    healthy: false,
    checked_at: new Date().toISOString(),
    attempts,
    endpoints,
    reason: endpoints.filter((e) => !e.ok).map(failureText).join("; "),
  };
}

/** One endpoint to probe: a parsed URL (or why it cannot be probed) and its 404 rule. */
interface Planned {
  url: URL | null;
  display: string;
  invalid?: string;
  /** Additional endpoints may answer 404 ("not provided"); the health URL may not. */
  notFoundOk: boolean;
}

function planEndpoints(t: ProbeTarget, extra: readonly string[]): Planned[] {
  const plans: Planned[] = [];
  const seen = new Set<string>();
  const base = parseHttpUrl(t.service_url);
  const healthRaw = (t.health_check_url ?? "").trim();
  const health = healthRaw
    ? parseHttpUrl(healthRaw)
    : base.url
    ? { url: joinPath(base.url, "/health") }
    : base;
  plans.push(toPlan(health, healthRaw || t.service_url, false));
  if (health.url) seen.add(health.url.href);
  for (const path of extra ?? []) {
    if (!path || !path.trim()) continue;
    const p = base.url ? { url: joinPath(base.url, path.trim()) } : base;
    // The same URL twice (e.g. "/health" listed as additional) is probed once, under the
    // stricter health-URL rule that was planned first.
    if (p.url) {
      if (seen.has(p.url.href)) continue;
      seen.add(p.url.href);
    }
    plans.push(toPlan(p, t.service_url, true));
  }
  return plans;
}

function toPlan(p: { url?: URL; invalid?: string }, raw: string, notFoundOk: boolean): Planned {
  if (p.url) return { url: p.url, display: redactUrl(p.url), notFoundOk };
  return { url: null, display: redactText(String(raw ?? "")), invalid: p.invalid, notFoundOk };
}

function parseHttpUrl(raw: string): { url?: URL; invalid?: string } {
  let u: URL;
  try {
    u = new URL(String(raw ?? "").trim());
  } catch {
    return { invalid: "invalid URL" };
  }
  // Only http(s) is probed: a registered URL must never read local files (file:, data:).
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return { invalid: `unsupported protocol ${u.protocol}` };
  }
  return { url: u };
}

/**
 * `path` under `base`'s origin and path. Only the pathname (and query) is set, so an endpoint
 * such as `//evil.example/x` cannot change the host.
 */
function joinPath(base: URL, path: string): URL {
  const u = new URL(base.href);
  const q = path.indexOf("?");
  const p = q < 0 ? path : path.slice(0, q);
  u.pathname = base.pathname.replace(/\/+$/, "") + "/" + p.replace(/^\/+/, "");
  u.search = q < 0 ? "" : path.slice(q);
  u.hash = "";
  return u;
}

class ProbeTimeout extends Error {}

interface AttemptIo {
  resolve: Resolver;
  send: Send;
  allowed: string[];
  timeoutMs: number;
}

const HEADERS = { accept: "application/json, text/plain;q=0.9, */*;q=0.1" };

async function attempt(p: Planned, io: AttemptIo, signal?: AbortSignal): Promise<EndpointResult> {
  const { timeoutMs } = io;
  if (!p.url) {
    return { url: p.display, ok: false, status: null, error: p.invalid ?? "invalid URL", ms: 0 };
  }
  // One controller per attempt, aborted by our own timer or by the caller: a timer we clear
  // ourselves leaves nothing pending after a fast answer (AbortSignal.timeout's would linger
  // for the whole timeout, once per endpoint per instance).
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new ProbeTimeout()), Math.max(1, timeoutMs));
  const onAbort = () => ctl.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  try {
    const url = p.url;
    const literal = ipLiteral(url);
    // A literal, or a metadata name before any lookup of it, is judged first.
    let addresses = literal ? [literal] : [];
    let refusal = probeRefusal(url, addresses, io.allowed);
    if (!refusal && !literal) {
      addresses = await untilAborted(io.resolve(url.hostname), ctl.signal);
      if (addresses.length === 0) throw new Error(`${url.hostname} resolves to no address`);
      refusal = probeRefusal(url, addresses, io.allowed);
    }
    if (refusal) {
      const r = { url: p.display, ok: false, status: null, error: `refused: ${refusal}`, ms: ms() };
      refusals.add(r);
      return r;
    }
    // The addresses just checked are the only ones `send` may connect to (DNS rebinding).
    const status = await io.send({ url, addresses, headers: HEADERS, signal: ctl.signal });
    const elapsed = ms();
    if (status >= 200 && status < 300) return { url: p.display, ok: true, status, ms: elapsed };
    if (status === 404 && p.notFoundOk) return { url: p.display, ok: true, status, ms: elapsed };
    if (status >= 300 && status < 400) {
      return { url: p.display, ok: false, status, error: "redirect not followed", ms: elapsed };
    }
    return { url: p.display, ok: false, status, ms: elapsed };
  } catch (err) {
    const elapsed = ms();
    let error: string;
    if (ctl.signal.reason instanceof ProbeTimeout) error = `timed out after ${timeoutMs} ms`;
    else if (signal?.aborted) error = "aborted";
    else error = describeError(err);
    return { url: p.display, ok: false, status: null, error, ms: elapsed };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

/** `p`, or the signal's reason once it aborts (a lookup in flight cannot be cancelled). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function aborted(attempts: number, endpoints: EndpointResult[]): ProbeResult {
  return {
    healthy: false,
    checked_at: new Date().toISOString(),
    attempts,
    endpoints,
    reason: "aborted",
  };
}

function failureText(e: EndpointResult): string {
  if (e.status !== null) {
    return `${e.url} answered ${e.status}` + (e.error ? ` (${e.error})` : "");
  }
  return `${e.url}: ${e.error ?? "failed"}`;
}

/**
 * An error's message chain (Deno's HTTP errors put the useful part in `cause`), with the URL it
 * repeats dropped and any other URL redacted, so nothing secret reaches logs or responses.
 */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e != null && depth < 5; depth++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  const text = parts.join(": ").replace(/error sending request for url \([^)]*\):\s*/g, "");
  return redactText(text).slice(0, 500) || "unknown error";
}

/** Replaces every URL inside `text` with its redacted form. */
function redactText(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s()<>"'`]+/gi, (m) => {
    try {
      return redactUrl(new URL(m));
    } catch {
      return "<url>";
    }
  });
}

/** A URL without user info and with query values masked (tokens travel in queries). */
export function redactUrl(u: URL): string {
  let out = `${u.protocol}//${u.host}${u.pathname}`;
  if (u.search) {
    const names = [...new URLSearchParams(u.search).keys()];
    out += "?" + names.map((n) => `${encodeURIComponent(n)}=***`).join("&");
  }
  return out;
}
