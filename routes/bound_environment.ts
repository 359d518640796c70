/**
 * Tokens bound to one environment (lib/auth.ts): which environments a request names, and
 * why a bound token may not make it. The fetch wrapper refuses such a request before any
 * route runs; the Unleash API routes read the environment with the same function.
 */
import type { Context } from "hono";
import { getQueryParams } from "hono/utils/url";
import type { AppEnv } from "./router.ts";
import type { ApiToken } from "../lib/auth.ts";
import type { Settings } from "../lib/settings.ts";
import { defaultFlagEnvironment, flagEnvironments } from "../lib/flags/api.ts";
import { ForbiddenError, ValidationError } from "../lib/errors.ts";

/** The header a client sets (an Unleash SDK through `customHeaders`) to name an environment. */
export const ENVIRONMENT_HEADER = "x-environment";

/** Each token bound to one environment: its name → that environment. */
export function boundEnvironments(tokens: readonly ApiToken[]): Map<string, string> {
  return new Map(tokens.flatMap((t) => t.environment ? [[t.name, t.environment]] : []));
}

/**
 * The `environment` Unleash's frontend SDK puts into every query when it is given none
 * (`unleash-proxy-client`'s default context): it names no environment there.
 */
export const SDK_DEFAULT_ENVIRONMENT = "default";

/**
 * Every environment `url` and `headers` name: the `X-Environment` header (split at commas,
 * as repeated headers are joined), then each `environment` query parameter (decoded as Hono
 * decodes them for the handlers) other than {@link SDK_DEFAULT_ENVIRONMENT}.
 */
export function namedEnvironments(url: string, headers: Headers): string[] {
  const out: string[] = [];
  const h = headers.get(ENVIRONMENT_HEADER);
  if (h !== null) out.push(...h.split(",").map((e) => e.trim()));
  // The query parser only when there is a query: hot requests without one skip it.
  if (url.includes("?")) {
    const named = (getQueryParams(url, "environment") as string[] | undefined) ?? [];
    out.push(...named.filter((e) => e !== SDK_DEFAULT_ENVIRONMENT));
  }
  return out;
}

const refusal = (bound: string, other: string) =>
  `This token is bound to the environment ${bound}; the request names ${
    JSON.stringify(other.slice(0, 64))
  }`;

/**
 * Why a token bound to `bound` may not make this request: its header or query names another
 * environment. Null when it may, or when the token is bound to none.
 */
export function environmentRefusal(bound: string | null, req: Request): string | null {
  if (bound === null) return null;
  const other = namedEnvironments(req.url, req.headers).find((e) => e !== bound);
  return other === undefined ? null : refusal(bound, other);
}

/**
 * Why a token bound to `bound` may not send this body: a JSON object whose `environment`
 * (as the routes' validators will parse it) is another one. Null when it may; a body that
 * is not a JSON object is left to the route.
 */
export function bodyEnvironmentRefusal(bound: string, text: string): string | null {
  if (!text.trimStart().startsWith("{")) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const env = (doc as { environment?: unknown }).environment;
  return env === undefined || env === bound ? null : refusal(bound, String(env));
}

/**
 * The environment an Unleash SDK's request reads or reports to: its token's when the token is
 * bound to one, else the one its `X-Environment` header or `environment` query names, else
 * UNLEASH_ENVIRONMENT / DEFAULT_ENVIRONMENT.
 * @returns a function of the request's context.
 * @throws {ForbiddenError} (from that function) when a bound token's request names another.
 * @throws {ValidationError} (from that function) naming the header or query parameter that
 *   names an environment flags are not kept for.
 */
export function sdkEnvironment(
  settings: Settings,
  tokens: readonly ApiToken[],
): (c: Context<AppEnv>) => string {
  const envs = flagEnvironments(settings);
  const fallback = defaultFlagEnvironment(settings);
  const bound = boundEnvironments(tokens);
  return (c) => {
    const own = c.env.principal === null ? undefined : bound.get(c.env.principal);
    const named = namedEnvironments(c.req.url, c.req.raw.headers);
    if (own !== undefined) {
      // The fetch wrapper refused any other already (environmentRefusal); checked again so
      // the handler never serves another environment to a bound token, whatever runs first.
      if (named.some((e) => e !== own)) {
        throw new ForbiddenError(`This token is bound to the environment ${own}`);
      }
      return own;
    }
    const env = named[0] ?? fallback;
    if (!envs.includes(env)) {
      const inHeader = c.req.header(ENVIRONMENT_HEADER) !== undefined;
      throw new ValidationError([{
        field: inHeader ? "X-Environment" : "environment",
        in: inHeader ? "header" : "query",
        message: `must be one of ${envs.join(", ")}`,
      }]);
    }
    return env;
  };
}
