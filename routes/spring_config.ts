/**
 * Spring Cloud Config Server's HTTP protocol under `/config-server`, so that a Spring Boot
 * application reads our configuration with `spring.config.import=configserver:` and
 * `spring.cloud.config.uri=http://host:port/config-server`, unchanged:
 *
 * - `GET /config-server/{application}/{profiles}[/{label}]`: Spring's `Environment` JSON;
 * - `GET /config-server/[{label}/]{application}-{profiles}.(yml|yaml|properties|json)`: the
 *   merged properties as one document.
 *
 * The mapping (docs/spring-cloud-config.md): `application` is our `service_name`; each of
 * `profiles` (comma-separated) that is one of our environments gives two property sources,
 * the application's entries first, then the environment's global ones, the last profile
 * first, as Spring's own server orders `{application}-{profile}.yml` before
 * `application-{profile}.yml`. An entry's JSON value is flattened under its key to Spring
 * property names as Spring flattens YAML. Secrets are in clear only for a token with
 * `secrets:read`; otherwise they are left out and named in `X-Config-Secrets-Omitted`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { requires } from "./access.ts";
import { boundEnvironments } from "./bound_environment.ts";
import { newRouter } from "./router.ts";
import type { AppEnv } from "./router.ts";
import { problemResponses } from "./openapi.ts";
import type { ConfigClient } from "../actors/config_client.ts";
import type { Settings } from "../lib/settings.ts";
import type { ApiToken } from "../lib/auth.ts";
import { ForbiddenError, NotFoundError } from "../lib/errors.ts";
import { sha256Hex } from "../lib/flags/digest.ts";
import {
  flattenEntry,
  mergedProperties,
  type PropertySource,
  toProperties,
  toTree,
  toYaml,
} from "../lib/config/spring.ts";

export interface SpringConfigDeps {
  settings: Settings;
  config: ConfigClient;
  tokens: ApiToken[];
}

/** The header naming the secrets left out of an answer (comma-separated keys). */
export const SECRETS_OMITTED_HEADER = "x-config-secrets-omitted";

const FILE_FORM = /^(.+)-([^-]+)\.(yml|yaml|properties|json)$/;
const LIST_PAGE = 10_000;
const APPLICATION = /^[A-Za-z0-9._-]{1,128}$/;

type Router = ReturnType<typeof newRouter>;

/** What one request asks: the application, its profiles (as asked) and the label. */
interface Ask {
  application: string;
  /** The profiles segment as asked: Spring's server echoes it as one element. */
  asked: string;
  profiles: string[];
  label: string | null;
}

/** The routes. */
export function springConfigRoutes(deps: SpringConfigDeps): Router {
  const r = newRouter();
  const envs = deps.settings.SUPPORTED_ENVIRONMENTS;
  const byName = new Map(deps.tokens.map((t) => [t.name, t]));
  const boundTo = boundEnvironments(deps.tokens);

  const canReveal = (c: Context<AppEnv>) => {
    const t = c.env.principal === null ? undefined : byName.get(c.env.principal);
    return t !== undefined && (t.scopes.has("secrets:read") || t.scopes.has("admin"));
  };

  /** The sources of `ask`, last profile first, and the secrets left out. */
  async function sources(c: Context<AppEnv>, ask: Ask) {
    const bound = c.env.principal === null ? undefined : boundTo.get(c.env.principal);
    const known = ask.profiles.filter((p) => envs.includes(p));
    const other = bound ? known.find((p) => p !== bound) : undefined;
    if (other !== undefined) {
      throw new ForbiddenError(
        `This token is bound to the environment ${bound}; the request names ${other}`,
      );
    }
    const reveal = canReveal(c);
    const out: PropertySource[] = [];
    const omitted: string[] = [];
    const versions: string[] = [];
    const signal = c.req.raw.signal;
    for (const profile of [...new Set(known)].reverse()) {
      for (const service of [ask.application, ""]) {
        const entries = await listAll(deps.config, profile, service, signal);
        const name = `configservice:${service === "" ? "application" : service}-${profile}`;
        const source: Record<string, unknown> = {};
        for (const e of entries) {
          versions.push(`${name}\u0000${e.key}\u0000${e.version}`);
          let value = e.value;
          if (e.secret) {
            if (!reveal) {
              omitted.push(e.key);
              continue;
            }
            const got = await deps.config.reveal({
              id: { environment: profile, service, key: e.key },
            });
            value = (JSON.parse(got.body) as { value: unknown }).value;
          }
          flattenEntry(source, e.key, value);
        }
        // A scope with no entries is left out, as Spring's server leaves out a missing file.
        if (entries.length > 0) out.push({ name, source });
      }
    }
    const version = versions.length === 0
      ? null
      : (await sha256Hex(versions.join("\n"))).slice(0, 16);
    return { sources: out, omitted: [...new Set(omitted)].sort(), version };
  }

  const headersFor = (omitted: string[]): Record<string, string> =>
    omitted.length > 0 ? { [SECRETS_OMITTED_HEADER]: omitted.join(",") } : {};

  async function environment(c: Context<AppEnv>, ask: Ask): Promise<Response> {
    const s = await sources(c, ask);
    const body = {
      name: ask.application,
      profiles: [ask.asked],
      label: ask.label,
      version: s.version,
      state: null,
      propertySources: s.sources,
    };
    return new Response(JSON.stringify(body), {
      headers: { "content-type": "application/json", ...headersFor(s.omitted) },
    });
  }

  async function file(c: Context<AppEnv>, label: string | null, name: string) {
    const m = FILE_FORM.exec(name);
    if (!m || !APPLICATION.test(m[1])) {
      throw new NotFoundError(
        `${name} is not {application}-{profiles}.yml, .yaml, .properties or .json`,
      );
    }
    const ask = { application: m[1], asked: m[2], profiles: profilesOf(m[2]), label };
    const s = await sources(c, ask);
    const merged = mergedProperties(s.sources);
    const ext = m[3];
    const [type, text] = ext === "properties"
      ? ["text/plain; charset=utf-8", toProperties(merged)]
      : ext === "json"
      ? ["application/json", JSON.stringify(toTree(merged))]
      : ["text/plain; charset=utf-8", toYaml(toTree(merged))];
    return new Response(text, { headers: { "content-type": type, ...headersFor(s.omitted) } });
  }

  const docs = {
    ...requires(["config:read"]),
    tags: ["Spring Cloud Config"],
  };
  const responses = {
    200: { description: "Spring's Environment JSON, or the merged properties as a document" },
    ...problemResponses(400, 401, 403, 404, 503),
  };
  const Segment = z.string().min(1).max(256);

  // One segment: `{application}-{profiles}.ext`.
  r.openapi(
    createRoute({
      method: "get",
      path: "/config-server/{name}",
      ...docs,
      summary: "Spring Cloud Config: {application}-{profiles}.yml|.yaml|.properties|.json",
      request: { params: z.object({ name: Segment }) },
      responses,
    }),
    (c) => file(c, null, c.req.valid("param").name) as unknown as never,
  );
  // Two: `{application}/{profiles}`, or `{label}/{application}-{profiles}.ext`.
  r.openapi(
    createRoute({
      method: "get",
      path: "/config-server/{application}/{profiles}",
      ...docs,
      summary: "Spring Cloud Config: the Environment of an application and profiles",
      description: "Also `/config-server/{label}/{application}-{profiles}.yml` (and .yaml, " +
        ".properties, .json). `application` is a service name, `profiles` a comma-separated " +
        "list of environments; profiles that are not environments add nothing.",
      request: { params: z.object({ application: Segment, profiles: Segment }) },
      responses,
    }),
    (c) => {
      const p = c.req.valid("param");
      if (FILE_FORM.test(p.profiles)) return file(c, p.application, p.profiles) as never;
      return environment(c, ask(p.application, p.profiles, null)) as unknown as never;
    },
  );
  r.openapi(
    createRoute({
      method: "get",
      path: "/config-server/{application}/{profiles}/{label}",
      ...docs,
      summary: "Spring Cloud Config: the Environment at a label (echoed; there is one)",
      request: {
        params: z.object({ application: Segment, profiles: Segment, label: Segment }),
      },
      responses,
    }),
    (c) => {
      const p = c.req.valid("param");
      return environment(c, ask(p.application, p.profiles, p.label)) as unknown as never;
    },
  );
  return r;
}

function ask(application: string, profiles: string, label: string | null): Ask {
  if (!APPLICATION.test(application)) {
    throw new NotFoundError(`${application} is not a service name`);
  }
  return { application, asked: profiles, profiles: profilesOf(profiles), label };
}

/** Spring's comma-separated profiles, as it echoes them. */
function profilesOf(s: string): string[] {
  return s.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

interface ListedEntry {
  key: string;
  value: unknown;
  secret: boolean;
  version: number;
}

/** Every entry of one scope (`service` "" is the global scope), in key order. */
async function listAll(
  config: ConfigClient,
  environment: string,
  service: string,
  signal: AbortSignal,
): Promise<ListedEntry[]> {
  const all: ListedEntry[] = [];
  for (let offset = 0;; offset += LIST_PAGE) {
    const res = await config.list({ environment, service, limit: LIST_PAGE, offset }, signal);
    const page = JSON.parse(res.body) as ListedEntry[];
    all.push(...page);
    if (page.length < LIST_PAGE) break;
  }
  return all.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}
