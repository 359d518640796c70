/**
 * The web console at `/ui`: server-rendered pages (hono/jsx) with htmx for live fragments,
 * served offline with its own files. Every page and action is a client of the API
 * ({@link callApi}) under the signed-in token, so the console has exactly the API's
 * authorization; the pages themselves are declared open and send a signed-out visitor to
 * sign-in when tokens are configured. POSTs need the session's CSRF token (header or form
 * field) and a same-host `Origin` when one is sent. Every answer carries a CSP without inline
 * scripts or styles, `frame-ancestors 'none'` and `nosniff`.
 */
import { createRoute } from "@hono/zod-openapi";
import type { Context, Handler } from "hono";
import { OPEN } from "../access.ts";
import { type AppEnv, newRouter } from "../router.ts";
import type { ApiToken } from "../../lib/auth.ts";
import type { Settings } from "../../lib/settings.ts";
import { type ApiAnswer, callApi, type FetchApp, sendApi } from "./api.ts";
import { openCsrf, type Principal, sameToken, Sessions } from "./session.ts";
import { Layout, Problem } from "./layout.tsx";
import {
  ConfigPage,
  ConfigTable,
  FlagsPage,
  Overview,
  PlaygroundResult,
  RegistryTable,
  SignIn,
} from "./pages.tsx";
import { UI_CSS, UI_JS } from "./style.ts";
import { type FlagDetail, FlagDetailView } from "./flag_page.tsx";
import {
  ConflictPage,
  CreateForm,
  EntryPage,
  entryQuery,
  type EntryView,
  type HistoryItem,
} from "./config_pages.tsx";

export interface UiDeps {
  settings: Settings;
  tokens: ApiToken[];
  fetchApp: FetchApp;
}

/** What a page renders for: who, with which CSRF token, calling the API with which token. */
export interface Viewer {
  principal: Principal;
  csrf: string;
  token: string | null;
  api(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiAnswer>;
  can(scope: string): boolean;
}

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; " +
    "form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Not no-referrer: with it Chromium sends `Origin: null` on the console's own form POSTs.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

const OPEN_PRINCIPAL: Principal = {
  open: true,
  name: null,
  scopes: ["admin"],
  environment: null,
};

/** Where a sign-in may send the browser back to: console paths only. */
function safeNext(next: string | undefined): string {
  return next && /^\/ui(\/[A-Za-z0-9._~/?&=%-]*)?$/.test(next) && !next.startsWith("//")
    ? next
    : "/ui";
}

export function uiRoutes(d: UiDeps) {
  const r = newRouter();
  const sessions = new Sessions();
  const open = d.tokens.length === 0;
  const envs = d.settings.SUPPORTED_ENVIRONMENTS;
  const defaultEnv = d.settings.DEFAULT_ENVIRONMENT;

  const declare = (method: "get" | "post", path: string, summary: string) =>
    r.openAPIRegistry.registerPath(createRoute({
      method,
      path,
      ...OPEN,
      tags: ["Console"],
      summary,
      description: "Web console; its data comes from the API under the signed-in token.",
      responses: { 200: { description: summary } },
    }));

  // Hono's `/ui/*` matches `/ui` itself too.
  r.use("/ui/*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
  });

  /** The viewer, or (signed out while tokens are required) a redirect to sign-in. */
  function viewer(c: Context<AppEnv>): Viewer | Response {
    let principal = OPEN_PRINCIPAL;
    let csrf: string;
    let token: string | null = null;
    if (open) {
      csrf = openCsrf(c);
    } else {
      const s = sessions.of(c);
      if (!s) {
        const url = new URL(c.req.url);
        const to = `/ui/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`;
        if (c.req.header("hx-request")) return c.body(null, 200, { "hx-redirect": to });
        return c.redirect(to, 303);
      }
      principal = s.principal;
      csrf = s.csrf;
      token = s.token;
    }
    const scopes = new Set(principal.scopes);
    return {
      principal,
      csrf,
      token,
      api: (method, path, body, headers) =>
        callApi(d.fetchApp, c, token, method, path, body, headers),
      can: (scope) => scopes.has("admin") || scopes.has(scope),
    };
  }

  /** A console POST: the viewer when its CSRF token and origin hold, else a 403 page. */
  async function poster(
    c: Context<AppEnv>,
  ): Promise<{ v: Viewer; form: Record<string, string> } | Response> {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const form: Record<string, string> = {};
    for (const [k, val] of Object.entries(await c.req.parseBody())) {
      if (typeof val === "string") form[k] = val;
    }
    const origin = c.req.header("origin");
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    let sameHost = true;
    if (origin !== undefined) {
      try {
        sameHost = new URL(origin).host === host;
      } catch {
        sameHost = false;
      }
    }
    if (!sameHost || !sameToken(c.req.header("x-csrf-token") ?? form._csrf, v.csrf)) {
      return c.html(
        <Problem
          status={403}
          body={{
            title: "Forbidden",
            detail: "The form is stale or came from another site: reload the page.",
          }}
        />,
        403,
      );
    }
    return { v, form };
  }

  const page = (path: string, summary: string, handler: Handler<AppEnv>) => {
    declare("get", path, summary);
    r.get(path, handler);
  };
  const action = (path: string, summary: string, handler: Handler<AppEnv>) => {
    declare("post", path, summary);
    r.post(path, handler);
  };
  const envOf = (q: string | undefined) => (q && envs.includes(q) ? q : defaultEnv);
  /** The configuration list a page or fragment shows, and its API query. */
  const listQuery = (c: Context<AppEnv>) => {
    const environment = envOf(c.req.query("environment"));
    const service = c.req.query("service_name") ?? "";
    const prefix = c.req.query("prefix") ?? "";
    const page = Math.max(0, Math.min(10_000, Number(c.req.query("page") ?? 0) | 0));
    const size = 50;
    const api = new URLSearchParams({
      environment,
      limit: String(size + 1),
      offset: String(page * size),
    });
    if (service !== "") api.set("service_name", service);
    if (prefix !== "") api.set("prefix", prefix);
    return { environment, service, prefix, page, size, api: api.toString() };
  };

  // --- static files
  page("/ui/static/ui.css", "Console stylesheet", (c) =>
    c.body(UI_CSS, 200, {
      "content-type": "text/css; charset=utf-8",
      "cache-control": "public, max-age=3600",
    }));
  page(
    "/ui/static/ui.js",
    "Console script (JSON checks, confirmations)",
    (c) =>
      c.body(UI_JS, 200, {
        "content-type": "text/javascript; charset=utf-8",
        "cache-control": "public, max-age=3600",
      }),
  );
  let htmx: string | null = null;
  page("/ui/static/htmx.min.js", "htmx, served from its npm package", async (c) => {
    // A literal dynamic import: loaded on first use, and still embedded by `deno compile`.
    htmx ??= (await import("htmx.org/dist/htmx.min.js", { with: { type: "text" } })).default;
    return c.body(htmx, 200, { "content-type": "text/javascript; charset=utf-8" });
  });

  // --- sign-in
  page("/ui/sign-in", "Console sign-in", (c) => {
    if (open) return c.redirect("/ui", 303);
    const csrf = openCsrf(c);
    return c.html(
      <Layout title="Sign in" path="/ui/sign-in" principal={null} csrf={csrf}>
        <SignIn next={safeNext(c.req.query("next"))} csrf={csrf} />
      </Layout>,
    );
  });
  action("/ui/sign-in", "Console sign-in with an API token", async (c) => {
    if (open) return c.redirect("/ui", 303);
    const form = await c.req.parseBody();
    const csrf = openCsrf(c);
    const next = safeNext(typeof form.next === "string" ? form.next : undefined);
    const token = typeof form.token === "string" ? form.token.trim() : "";
    if (!sameToken(typeof form._csrf === "string" ? form._csrf : undefined, csrf)) {
      return c.html(
        <Layout title="Sign in" path="/ui/sign-in" principal={null} csrf={csrf}>
          <Problem
            status={403}
            body={{ title: "Forbidden", detail: "The form was stale: try again." }}
          />
          <SignIn next={next} csrf={csrf} />
        </Layout>,
        403,
      );
    }
    // The API decides: the same token check, failure limits included, as any request.
    const who = token === ""
      ? { status: 401, body: { title: "Unauthorized", detail: "Enter an API token" } } as ApiAnswer
      : await callApi(d.fetchApp, c, token, "GET", "/api/v1/auth/whoami");
    if (who.status !== 200) {
      return c.html(
        <Layout title="Sign in" path="/ui/sign-in" principal={null} csrf={csrf}>
          <Problem status={who.status} body={who.body} />
          <SignIn next={next} csrf={csrf} />
        </Layout>,
        who.status === 429 ? 429 : 401,
      );
    }
    sessions.start(c, token, who.body as Principal);
    return c.redirect(next, 303);
  });
  action("/ui/sign-out", "Console sign-out", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    sessions.end(c);
    return c.redirect(open ? "/ui" : "/ui/sign-in", 303);
  });

  // --- overview
  page("/ui", "Console overview", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const [health, services, flags, entries] = await Promise.all([
      v.api("GET", "/health"),
      v.api("GET", "/api/v1/registry/services"),
      v.api("GET", `/api/v1/feature-flags?environment=${defaultEnv}`),
      v.api("GET", `/api/v1/config?environment=${defaultEnv}&limit=1001`),
    ]);
    return c.html(
      <Layout title="Overview" path="/ui" principal={v.principal} csrf={v.csrf}>
        <Overview
          health={health}
          services={services}
          flags={flags}
          entries={entries}
          environment={defaultEnv}
        />
      </Layout>,
    );
  });

  // --- configuration
  page("/ui/config", "Console configuration", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const q = listQuery(c);
    const { environment, service } = q;
    const list = await v.api("GET", `/api/v1/config?${q.api}`);
    return c.html(
      <Layout title="Configuration" path="/ui/config" principal={v.principal} csrf={v.csrf}>
        {v.can("config:write")
          ? <CreateForm csrf={v.csrf} environment={environment} service={service} />
          : null}
        <ConfigPage {...q} list={list} environments={envs} />
      </Layout>,
    );
  });

  page("/ui/config/table", "Console configuration table (fragment)", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const q = listQuery(c);
    return c.html(<ConfigTable {...q} list={await v.api("GET", `/api/v1/config?${q.api}`)} />);
  });
  page("/ui/config/events", "Console: the watch stream, relayed under the session", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const environment = envOf(c.req.query("environment"));
    // EventSource cannot send the token: the console asks the API's watch with it and relays
    // the stream as it is (a client that goes cancels it, which ends the watch; the service's
    // shutdown ends it too).
    const res = await sendApi(
      d.fetchApp,
      c,
      v.token,
      "GET",
      `/api/v1/config/watch?environment=${environment}`,
      { signal: c.req.raw.signal },
    );
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  page("/ui/config/entry", "Console configuration entry", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const key = c.req.query("key") ?? "";
    const environment = envOf(c.req.query("environment"));
    const service = c.req.query("service_name") || null;
    const reveal = c.req.query("reveal") === "true";
    const addr = entryQuery({ key, environment, service_name: service });
    const path = `/api/v1/config/${encodeURIComponent(key)}?${addr.replace(/^key=[^&]*&/, "")}`;
    const [got, history] = await Promise.all([
      v.api("GET", `${path}${reveal ? "&reveal=true" : ""}`),
      v.api(
        "GET",
        `/api/v1/config/${encodeURIComponent(key)}/history?${
          addr.replace(/^key=[^&]*&/, "")
        }&limit=100`,
      ),
    ]);
    const title = `${key}`;
    if (got.status !== 200) {
      return c.html(
        <Layout title={title} path="/ui/config" principal={v.principal} csrf={v.csrf}>
          <Problem status={got.status} body={got.body} />
          <p>
            <a href={`/ui/config?environment=${environment}`}>← all entries</a>
          </p>
        </Layout>,
        got.status === 404 ? 404 : 200,
      );
    }
    const from = Number(c.req.query("from"));
    const to = Number(c.req.query("to"));
    return c.html(
      <Layout title={title} path="/ui/config" principal={v.principal} csrf={v.csrf}>
        <EntryPage
          entry={got.body as EntryView}
          etag={got.headers.get("etag") ?? ""}
          csrf={v.csrf}
          canWrite={v.can("config:write")}
          revealed={reveal}
          canReveal={v.can("secrets:read")}
          history={history.status === 200 ? history.body as HistoryItem[] : null}
          diff={from > 0 && to > 0 ? { from, to } : null}
        />
      </Layout>,
    );
  });

  /** The entry a form addresses, and its API path with the scope query. */
  const entryOf = (f: Record<string, string>) => {
    const entry = {
      key: f.key ?? "",
      environment: envOf(f.environment),
      service_name: f.service_name || null,
    };
    const scope = new URLSearchParams({ environment: entry.environment });
    if (entry.service_name) scope.set("service_name", entry.service_name);
    return { entry, path: `/api/v1/config/${encodeURIComponent(entry.key)}`, scope };
  };
  /** A value typed into the form, as JSON; a 400 problem naming `value` when it is none. */
  const valueOf = (text: string | undefined): { value: unknown } | ApiAnswer => {
    try {
      return { value: JSON.parse(text ?? "") };
    } catch {
      return {
        status: 400,
        body: { title: "Bad Request", errors: [{ field: "value", message: "is not valid JSON" }] },
        headers: new Headers(),
      };
    }
  };
  const writeBody = (
    f: Record<string, string>,
    value: unknown,
    entry: { environment: string; service_name: string | null },
  ) => ({
    value,
    environment: entry.environment,
    ...(entry.service_name ? { service_name: entry.service_name } : {}),
    description: f.description || null,
    secret: f.secret === "true",
  });
  /** A write the API refused (other than 412): its problem, with what was typed kept. */
  const refused = (c: Context<AppEnv>, v: Viewer, a: ApiAnswer, typed: string, back: string) =>
    c.html(
      <Layout title="Not saved" path="/ui/config" principal={v.principal} csrf={v.csrf}>
        <Problem status={a.status} body={a.body} />
        <h2>What you entered</h2>
        <pre data-field="mine">{typed}</pre>
        <p>
          <a href={back}>Back</a>
        </p>
      </Layout>,
      // A page for people: 200, so that the browser logs no failed load; the API's status is
      // in the problem box.
      200,
    );

  action("/ui/config/save", "Console: save an entry (If-Match)", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const { entry, path, scope } = entryOf(p.form);
    const back = `/ui/config/entry?${entryQuery(entry)}`;
    const parsed = valueOf(p.form.value);
    if ("status" in parsed) return refused(c, p.v, parsed, p.form.value ?? "", back);
    const res = await p.v.api("PUT", `${path}`, writeBody(p.form, parsed.value, entry), {
      "if-match": p.form.if_match ?? "",
    });
    if (res.status === 200) return c.redirect(back, 303);
    if (res.status === 412) {
      const now = await p.v.api("GET", `${path}?${scope}`);
      if (now.status === 200) {
        return c.html(
          <Layout
            title={`${entry.key}: changed meanwhile`}
            path="/ui/config"
            principal={p.v.principal}
            csrf={p.v.csrf}
          >
            <ConflictPage
              mine={p.form.value ?? ""}
              current={now.body as EntryView}
              etag={now.headers.get("etag") ?? ""}
              csrf={p.v.csrf}
              description={p.form.description ?? ""}
              secret={p.form.secret === "true"}
            />
          </Layout>,
          // The page renders the API's 412 (shown in it): 200 for the browser, as above.
          200,
        );
      }
    }
    return refused(c, p.v, res, p.form.value ?? "", back);
  });
  action("/ui/config/create", "Console: create an entry", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const { entry } = entryOf(p.form);
    const back = `/ui/config?environment=${entry.environment}`;
    const parsed = valueOf(p.form.value);
    if ("status" in parsed) return refused(c, p.v, parsed, p.form.value ?? "", back);
    const res = await p.v.api("POST", "/api/v1/config", {
      key: entry.key,
      ...writeBody(p.form, parsed.value, entry),
    });
    if (res.status === 201) return c.redirect(`/ui/config/entry?${entryQuery(entry)}`, 303);
    return refused(c, p.v, res, p.form.value ?? "", back);
  });
  action("/ui/config/delete", "Console: delete an entry (If-Match)", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const { entry, path, scope } = entryOf(p.form);
    const res = await p.v.api("DELETE", `${path}?${scope}`, undefined, {
      "if-match": p.form.if_match ?? "",
    });
    if (res.status === 200) return c.redirect(`/ui/config?environment=${entry.environment}`, 303);
    return refused(c, p.v, res, "(delete)", `/ui/config/entry?${entryQuery(entry)}`);
  });
  action("/ui/config/rollback", "Console: roll an entry back to a version", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const { entry, path } = entryOf(p.form);
    const res = await p.v.api("POST", `${path}/rollback`, {
      environment: entry.environment,
      ...(entry.service_name ? { service_name: entry.service_name } : {}),
      version: Number(p.form.version),
    });
    const back = `/ui/config/entry?${entryQuery(entry)}`;
    if (res.status === 200) return c.redirect(back, 303);
    return refused(c, p.v, res, `(rollback to v${p.form.version})`, back);
  });

  // --- registry
  page("/ui/registry", "Console registry", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const services = await v.api("GET", "/api/v1/registry/services");
    return c.html(
      <Layout title="Registry" path="/ui/registry" principal={v.principal} csrf={v.csrf}>
        <p class="muted">Refreshed every 2 seconds.</p>
        <div id="registry" hx-get="/ui/registry/table" hx-trigger="every 2s" hx-swap="innerHTML">
          <RegistryTable services={services} canWrite={v.can("registry:write")} />
        </div>
        <div id="registry-result" aria-live="polite"></div>
      </Layout>,
    );
  });
  page("/ui/registry/table", "Console registry table (fragment)", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const services = await v.api("GET", "/api/v1/registry/services");
    return c.html(<RegistryTable services={services} canWrite={v.can("registry:write")} />);
  });
  action("/ui/registry/check", "Console: check a service's instances now", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const service = p.form.service_name ?? "";
    const res = await p.v.api(
      "POST",
      `/api/v1/registry/services/${encodeURIComponent(service)}/health`,
    );
    if (res.status !== 200) return c.html(<Problem status={res.status} body={res.body} />);
    const b = res.body as { healthy_instances: number; instances_checked: number };
    return c.html(
      <p class="note">{`${service}: ${b.healthy_instances} of ${b.instances_checked} healthy`}</p>,
    );
  });
  action("/ui/registry/deregister", "Console: deregister an instance", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const res = await p.v.api("POST", "/api/v1/registry/deregister", {
      service_name: p.form.service_name,
      instance_id: p.form.instance_id,
    });
    if (res.status !== 200) return c.html(<Problem status={res.status} body={res.body} />);
    return c.html(<p class="note">{`${p.form.instance_id} deregistered`}</p>);
  });

  // --- flags
  page("/ui/flags", "Console feature flags", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const environment = envOf(c.req.query("environment"));
    const flags = await v.api("GET", `/api/v1/feature-flags?environment=${environment}`);
    return c.html(
      <Layout title="Feature flags" path="/ui/flags" principal={v.principal} csrf={v.csrf}>
        <FlagsPage
          flags={flags}
          environments={envs}
          environment={environment}
          canSync={v.can("flags:write")}
        />
      </Layout>,
    );
  });
  page("/ui/flags/flag", "Console: one flag, its strategies in words", async (c) => {
    const v = viewer(c);
    if (v instanceof Response) return v;
    const environment = envOf(c.req.query("environment"));
    const name = c.req.query("name") ?? "";
    const res = await v.api(
      "GET",
      `/api/v1/feature-flags/${encodeURIComponent(name)}?environment=${environment}`,
    );
    return c.html(
      <Layout title={name} path="/ui/flags" principal={v.principal} csrf={v.csrf}>
        {res.status === 200
          ? <FlagDetailView flag={res.body as FlagDetail} environment={environment} />
          : <Problem status={res.status} body={res.body} />}
      </Layout>,
    );
  });
  action("/ui/flags/evaluate", "Console: evaluate a flag (playground)", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    let context: unknown = undefined;
    const raw = (p.form.context ?? "").trim();
    if (raw !== "") {
      try {
        context = JSON.parse(raw);
      } catch {
        return c.html(
          <Problem
            status={400}
            body={{
              title: "Bad Request",
              errors: [{ field: "context", message: "is not valid JSON" }],
            }}
          />,
        );
      }
    }
    const body: Record<string, unknown> = {
      flag_name: p.form.flag_name,
      environment: envOf(p.form.environment),
    };
    if (p.form.user_id) body.user_id = p.form.user_id;
    if (context !== undefined) body.context = context;
    const res = await p.v.api("POST", "/api/v1/feature-flags/evaluate", body);
    if (res.status !== 200) return c.html(<Problem status={res.status} body={res.body} />);
    return c.html(<PlaygroundResult result={res.body as Record<string, unknown>} />);
  });
  action("/ui/flags/sync", "Console: sync flag definitions now", async (c) => {
    const p = await poster(c);
    if (p instanceof Response) return p;
    const environment = envOf(p.form.environment);
    const res = await p.v.api("POST", `/api/v1/feature-flags/sync?environment=${environment}`);
    if (res.status !== 200) return c.html(<Problem status={res.status} body={res.body} />);
    const b = res.body as { flags_synced: number };
    return c.html(<p class="note">{`${b.flags_synced} flags synced for ${environment}`}</p>);
  });

  return r;
}
