/**
 * API tokens: `Authorization: Bearer <token>`, or the token alone as Unleash SDKs send it,
 * checked against SHA-256 digests (from `API_TOKENS_FILE`, and `API_TOKENS` hashed at
 * start), compared in constant time. Each token has a name (the principal written as
 * `updated_by`), scopes and optionally the one environment it is bound to; each request
 * needs the scopes its route declares (routes/access.ts). Token buckets enforce
 * `RATE_LIMIT_PER_MINUTE` (per token, per address when open) and `AUTH_FAILURES_PER_MINUTE`
 * (failed authentications per client address).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";

export const SCOPES = [
  "config:read",
  "config:write",
  "registry:read",
  "registry:write",
  "flags:read",
  "flags:write",
  "secrets:read",
  "admin",
] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiToken {
  name: string;
  digest: Buffer;
  scopes: Set<Scope>;
  /** The only environment the token may read or write; absent: any. */
  environment?: string;
}

/** What an environment name may be in a token binding (as in SUPPORTED_ENVIRONMENTS). */
const ENV_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** A token configuration that cannot be used; names the setting. */
export class TokenConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
  }
}

const FileEntry = z.object({
  name: z.string().min(1).max(128),
  token_sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters"),
  scopes: z.array(z.enum(SCOPES)).min(1),
  environment: z.string().regex(ENV_NAME, "must be an environment name").optional(),
});

export function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * `API_TOKENS`: `name:token:scope,scope[@environment];name:token:scope` (the token holds
 * no `:` or `;`); `@environment` binds the token to that environment.
 * @throws {TokenConfigError}
 */
export function parseInlineTokens(value: string): ApiToken[] {
  return value.split(";").map((s) => s.trim()).filter(Boolean).map((entry, i) => {
    const a = entry.indexOf(":");
    const b = a < 0 ? -1 : entry.indexOf(":", a + 1);
    if (a <= 0 || b <= a + 1) {
      throw new TokenConfigError("API_TOKENS", `entry ${i + 1} is not name:token:scopes`);
    }
    // Scopes hold `:` themselves (`flags:read`), so the environment follows an `@`.
    const c = entry.indexOf("@", b + 1);
    const scopes = entry.slice(b + 1, c < 0 ? undefined : c).split(",").map((x) => x.trim())
      .filter(Boolean);
    const environment = c < 0 ? undefined : entry.slice(c + 1).trim();
    if (environment !== undefined && !ENV_NAME.test(environment)) {
      throw new TokenConfigError(
        "API_TOKENS",
        `entry ${i + 1} (${entry.slice(0, a)}): the environment after \`@\` must be ` +
          "an environment name",
      );
    }
    const bad = scopes.filter((x) => !(SCOPES as readonly string[]).includes(x));
    if (scopes.length === 0 || bad.length > 0) {
      throw new TokenConfigError(
        "API_TOKENS",
        `entry ${i + 1} (${entry.slice(0, a)}): unknown scope ${bad.join(", ") || "(none)"}; ` +
          `scopes are ${SCOPES.join(", ")}`,
      );
    }
    const token = entry.slice(a + 1, b);
    if (token.length < 16) {
      throw new TokenConfigError("API_TOKENS", `entry ${i + 1}: tokens need 16 characters or more`);
    }
    return {
      name: entry.slice(0, a),
      digest: sha256(token),
      scopes: new Set(scopes as Scope[]),
      ...(environment ? { environment } : {}),
    };
  });
}

/**
 * `API_TOKENS_FILE`: a JSON list of `{name, token_sha256, scopes, environment?}`.
 * @throws {TokenConfigError}
 */
export function parseTokenFile(text: string): ApiToken[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new TokenConfigError("API_TOKENS_FILE", "is not valid JSON");
  }
  const r = z.array(FileEntry).safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TokenConfigError(
      "API_TOKENS_FILE",
      `${
        i.path.join(".") || "document"
      }: ${i.message} (expected a list of {name, token_sha256, scopes, environment?})`,
    );
  }
  return r.data.map((e) => ({
    name: e.name,
    digest: Buffer.from(e.token_sha256, "hex"),
    scopes: new Set(e.scopes),
    ...(e.environment ? { environment: e.environment } : {}),
  }));
}

/**
 * Every configured token; empty means the service runs open.
 * @throws {TokenConfigError} also for a token bound to an environment not in
 * `SUPPORTED_ENVIRONMENTS` (when given).
 */
export function loadTokens(
  s: {
    API_TOKENS?: string;
    API_TOKENS_FILE?: string;
    AUTH_REQUIRED: boolean;
    SUPPORTED_ENVIRONMENTS?: string[];
  },
): ApiToken[] {
  const tokens: ApiToken[] = [];
  if (s.API_TOKENS_FILE) {
    let text: string;
    try {
      text = Deno.readTextFileSync(s.API_TOKENS_FILE);
    } catch (err) {
      throw new TokenConfigError("API_TOKENS_FILE", `cannot be read (${(err as Error).message})`);
    }
    tokens.push(...parseTokenFile(text));
  }
  if (s.API_TOKENS) tokens.push(...parseInlineTokens(s.API_TOKENS));
  const names = new Set<string>();
  for (const t of tokens) {
    if (names.has(t.name)) {
      throw new TokenConfigError(
        s.API_TOKENS_FILE ? "API_TOKENS_FILE" : "API_TOKENS",
        `token name ${t.name} is used twice`,
      );
    }
    names.add(t.name);
    if (
      t.environment && s.SUPPORTED_ENVIRONMENTS && !s.SUPPORTED_ENVIRONMENTS.includes(t.environment)
    ) {
      throw new TokenConfigError(
        s.API_TOKENS_FILE ? "API_TOKENS_FILE" : "API_TOKENS",
        `token ${t.name} is bound to ${t.environment}, not one of SUPPORTED_ENVIRONMENTS ` +
          `(${s.SUPPORTED_ENVIRONMENTS.join(", ")})`,
      );
    }
  }
  if (tokens.length === 0 && s.AUTH_REQUIRED) {
    throw new TokenConfigError(
      "AUTH_REQUIRED",
      "is true but no API_TOKENS or API_TOKENS_FILE gives a token",
    );
  }
  return tokens;
}

/**
 * The token an `Authorization` header carries: `Bearer <token>`, `Basic base64(user:token)`
 * (the user name is not checked: the token names its holder), or the token alone. Null
 * when it carries none.
 */
export function tokenOf(authorization: string): string | null {
  const basic = authorization.match(/^Basic[ ]+([A-Za-z0-9+/]+={0,2})\s*$/i);
  if (basic) {
    let pair: string;
    try {
      pair = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(basic[1]), (ch) => ch.charCodeAt(0)),
      );
    } catch {
      return null;
    }
    const colon = pair.indexOf(":");
    const password = colon < 0 ? "" : pair.slice(colon + 1);
    return /^\S+$/.test(password) ? password : null;
  }
  const m = authorization.match(/^(?:Bearer[ ]+)?(\S+)\s*$/i);
  return m ? m[1] : null;
}

export type AuthResult =
  | { ok: true; principal: string | null; key: string; environment: string | null }
  | { ok: false; status: 401 | 403; detail: string };

export class Authenticator {
  readonly #tokens: ApiToken[];
  constructor(tokens: ApiToken[]) {
    this.#tokens = tokens;
  }
  get enabled(): boolean {
    return this.#tokens.length > 0;
  }

  /**
   * Checks the `Authorization` header (`Bearer <token>`, the token alone as Unleash SDKs
   * send it, or HTTP Basic with the token as password as Spring Cloud Config clients send
   * it) against the scopes the route needs.
   */
  check(authorization: string | null, scopes: readonly Scope[]): AuthResult {
    const token = authorization === null ? null : tokenOf(authorization);
    if (token === null) {
      return {
        ok: false,
        status: 401,
        detail: authorization
          ? "The Authorization header must be `Bearer <token>`, the token alone, or Basic " +
            "with the token as password"
          : "An API token is required: `Authorization: Bearer <token>`",
      };
    }
    const digest = sha256(token);
    let found: ApiToken | undefined;
    // Every digest is compared, so the time taken does not depend on which one matches.
    for (const t of this.#tokens) {
      if (timingSafeEqual(t.digest, digest) && !found) found = t;
    }
    if (!found) return { ok: false, status: 401, detail: "The API token is not valid" };
    const missing = scopes.filter((s) => !found!.scopes.has(s) && !found!.scopes.has("admin"));
    if (missing.length > 0) {
      return {
        ok: false,
        status: 403,
        detail: `Token ${found.name} lacks the scope ${missing.join(" and ")}`,
      };
    }
    return {
      ok: true,
      principal: found.name,
      key: `token:${found.name}`,
      environment: found.environment ?? null,
    };
  }
}

/** Token buckets: `perMinute` requests a minute per key, refilled continuously. */
export class RateLimiter {
  readonly #perMinute: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(perMinute: number) {
    this.#perMinute = perMinute;
  }
  get enabled(): boolean {
    return this.#perMinute > 0;
  }
  /** Seconds until `key` may take a request (0: now), taking nothing. */
  peek(key: string, now = performance.now()): number {
    const b = this.#buckets.get(key);
    if (!b) return 0;
    const rate = this.#perMinute / 60_000;
    const tokens = Math.min(this.#perMinute, b.tokens + (now - b.at) * rate);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / rate / 1000));
  }

  /** Takes one request; returns 0 when allowed, else the seconds to wait. */
  take(key: string, now = performance.now()): number {
    const rate = this.#perMinute / 60_000;
    let b = this.#buckets.get(key);
    if (!b) {
      // The oldest bucket goes, not all of them: clearing let a client that cycles through
      // addresses wipe every other client's count.
      if (this.#buckets.size >= 100_000) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: this.#perMinute, at: now };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.#perMinute, b.tokens + (now - b.at) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
  }
}

/**
 * The rate-limit key of a client address: IPv4 as is; IPv6 by its /64, which one host or
 * site commonly holds whole (an address per request costs it nothing); IPv4-mapped IPv6 as
 * the IPv4 address.
 */
export function clientKey(host: string): string {
  const h = host.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (!h.includes(":")) return `addr:${h}`;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(h);
  if (mapped) return `addr:${mapped[1]}`;
  const [head, tail] = h.split("::");
  const front = head ? head.split(":") : [];
  const back = tail ? tail.split(":") : [];
  const groups = tail === undefined
    ? front
    : [...front, ...new Array(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back];
  const net = groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16));
  return `addr:${net.join(":")}::/64`;
}
