/**
 * Web console sessions: a token given at sign-in is kept here, server-side, under a random id
 * that travels as an HttpOnly, SameSite=Strict cookie (Secure behind https); the token never
 * reaches the page. Each session has its CSRF token. With no API tokens configured there is no
 * sign-in: a random CSRF cookie (double-submit) protects the console's POSTs instead.
 * Bounded: at most {@link MAX_SESSIONS}, the oldest dropped first; each lives
 * {@link SESSION_TTL_MS}.
 */
import { getCookie, setCookie } from "hono/cookie";
import type { Context } from "hono";
import { timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";

export const SESSION_COOKIE = "cs_session";
export const CSRF_COOKIE = "cs_csrf";
const MAX_SESSIONS = 10_000;
const SESSION_TTL_MS = 8 * 3600_000;

/** Who the console acts as: the token's name and scopes (all of them when open). */
export interface Principal {
  open: boolean;
  name: string | null;
  scopes: string[];
  environment: string | null;
}

interface Session {
  token: string;
  principal: Principal;
  csrf: string;
  expires: number;
}

const random = () => crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().slice(0, 8);

/** Cookies are Secure when the request came over https (directly or via a proxy). */
function secure(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto")?.split(",")[0].trim() === "https";
}

export class Sessions {
  readonly #m = new Map<string, Session>();

  /** Starts a session for `token` and sets its cookie. */
  start(c: Context, token: string, principal: Principal): void {
    while (this.#m.size >= MAX_SESSIONS) this.#m.delete(this.#m.keys().next().value!);
    const id = random();
    this.#m.set(id, { token, principal, csrf: random(), expires: Date.now() + SESSION_TTL_MS });
    setCookie(c, SESSION_COOKIE, id, {
      path: "/ui",
      httpOnly: true,
      sameSite: "Strict",
      secure: secure(c),
      maxAge: SESSION_TTL_MS / 1000,
    });
  }

  /** The request's live session, if any. */
  of(c: Context): Session | undefined {
    const id = getCookie(c, SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.#m.get(id);
    if (s && s.expires < Date.now()) {
      this.#m.delete(id);
      return undefined;
    }
    return s;
  }

  /** Ends the request's session and clears its cookie. */
  end(c: Context): void {
    const id = getCookie(c, SESSION_COOKIE);
    if (id) this.#m.delete(id);
    setCookie(c, SESSION_COOKIE, "", {
      path: "/ui",
      httpOnly: true,
      sameSite: "Strict",
      maxAge: 0,
    });
  }
}

/** The open console's CSRF token: the cookie's, or a new one set now. */
export function openCsrf(c: Context): string {
  const have = getCookie(c, CSRF_COOKIE);
  if (have && /^[0-9a-f]{40}$/.test(have)) return have;
  const made = random();
  setCookie(c, CSRF_COOKIE, made, {
    path: "/ui",
    httpOnly: true,
    sameSite: "Strict",
    secure: secure(c),
  });
  return made;
}

/** Constant-time equality of two CSRF tokens. */
export function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
