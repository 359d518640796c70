/**
 * The web console's server side, without a browser: security headers, sign-in with an API
 * token into an HttpOnly session cookie, CSRF and origin checks on every POST, and the API's
 * own authorization deciding what a page shows and what an action may do. The browser tests
 * are in ui_browser_test.ts.
 */
import assert from "node:assert/strict";
import { embeddedSettings, send, startService, stubInstance, tempFile } from "./_helpers.ts";

const ADMIN = "ui-admin-token-0123456789";
const READER = "ui-reader-token-0123456789";
const TOKENS = `ui-admin:${ADMIN}:admin;ui-reader:${READER}:config:read,registry:read,flags:read`;

type Service = Awaited<ReturnType<typeof startService>>;

/** A browser's cookie jar over the in-process app: cookies set are sent back. */
function browser(svc: Service) {
  const jar = new Map<string, string>();
  return {
    jar,
    async go(path: string, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      if (jar.size > 0) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
      const res = await svc.app.request(path, { ...init, headers, redirect: "manual" });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(";");
        const [k, v] = pair.split("=");
        if (v === "") jar.delete(k);
        else jar.set(k, v);
      }
      return { res, text: await res.text() };
    },
    /** The CSRF token rendered into the page (hx-headers on <body>). */
    csrfOf(html: string): string {
      const m = /X-CSRF-Token&quot;:&quot;([0-9a-f]+)&quot;/.exec(html) ??
        /name="_csrf" value="([0-9a-f]+)"/.exec(html);
      assert.ok(m, "a CSRF token in the page");
      return m[1];
    },
  };
}

const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});

Deno.test("console pages carry a CSP without inline scripts, frame-ancestors 'none' and nosniff", async () => {
  await using svc = await startService(embeddedSettings());
  for (const path of ["/ui", "/ui/config", "/ui/registry", "/ui/flags", "/ui/static/htmx.min.js"]) {
    const res = await svc.app.request(path);
    assert.equal(res.status, 200, path);
    await res.body?.cancel();
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
  }
  const page = await (await svc.app.request("/ui")).text();
  assert.match(page, /^<!doctype html>/);
  assert.doesNotMatch(page, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
  assert.doesNotMatch(page, /<style|\sstyle=/, "no inline style");
});

Deno.test("with tokens, every page sends a signed-out visitor to sign-in; a token signs in to an HttpOnly session", async () => {
  await using svc = await startService(embeddedSettings({ API_TOKENS: TOKENS }));
  const b = browser(svc);
  for (const path of ["/ui", "/ui/config?environment=production", "/ui/registry", "/ui/flags"]) {
    const { res } = await b.go(path);
    assert.equal(res.status, 303, path);
    assert.equal(
      res.headers.get("location"),
      `/ui/sign-in?next=${encodeURIComponent(path)}`,
      path,
    );
  }
  // htmx fragments are told to go there instead of swapping a redirect in.
  const frag = await b.go("/ui/registry/table", { headers: { "hx-request": "true" } });
  assert.equal(frag.res.headers.get("hx-redirect"), "/ui/sign-in?next=%2Fui%2Fregistry%2Ftable");

  const signIn = await b.go("/ui/sign-in?next=/ui/flags");
  assert.equal(signIn.res.status, 200);
  const csrf = b.csrfOf(signIn.text);
  // A wrong token: 401, no session.
  const wrong = await b.go("/ui/sign-in", form({ _csrf: csrf, token: "nope", next: "/ui/flags" }));
  assert.equal(wrong.res.status, 401);
  assert.match(wrong.text, /not valid/);
  assert.equal(b.jar.has("cs_session"), false);
  // Without the form's CSRF token: refused, even with a good token.
  const forged = await b.go("/ui/sign-in", form({ token: ADMIN }));
  assert.equal(forged.res.status, 403);
  // The right one: a session cookie, HttpOnly and SameSite=Strict, and back to `next`.
  const ok = await b.go("/ui/sign-in", form({ _csrf: csrf, token: ADMIN, next: "/ui/flags" }));
  assert.equal(ok.res.status, 303);
  assert.equal(ok.res.headers.get("location"), "/ui/flags");
  const cookie = ok.res.headers.getSetCookie().find((c) => c.startsWith("cs_session="))!;
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.doesNotMatch(cookie, new RegExp(ADMIN), "the token never reaches the browser");
  const page = await b.go("/ui/flags");
  assert.equal(page.res.status, 200);
  assert.match(page.text, /ui-admin/);
  // `next` may only be a console path.
  const away = await b.go(
    "/ui/sign-in",
    form({ _csrf: csrf, token: ADMIN, next: "//evil.example/ui" }),
  );
  assert.equal(away.res.headers.get("location"), "/ui");
  // Sign-out ends the session (the last sign-in's: each sign-in starts a new one).
  const csrf2 = b.csrfOf((await b.go("/ui")).text);
  const out = await b.go("/ui/sign-out", form({ _csrf: csrf2 }));
  assert.equal(out.res.status, 303);
  assert.equal((await b.go("/ui")).res.status, 303);
});

Deno.test("a read-only token sees no write controls, and the API refuses its actions (403)", async () => {
  await using svc = await startService(
    embeddedSettings({ API_TOKENS: TOKENS, SERVICE_HEALTH_CHECK_ENABLED: "false" }),
  );
  const reg = await send(svc.app, "POST", "/api/v1/registry/register", {
    service_name: "orders",
    service_url: "http://127.0.0.1:9",
    metadata: { instance_id: "orders-1" },
  }, { authorization: `Bearer ${ADMIN}` });
  assert.equal(reg.status, 201);
  await reg.body?.cancel();
  const b = browser(svc);
  const csrf = b.csrfOf((await b.go("/ui/sign-in")).text);
  await b.go("/ui/sign-in", form({ _csrf: csrf, token: READER, next: "/ui/registry" }));
  const page = await b.go("/ui/registry");
  assert.equal(page.res.status, 200);
  assert.match(page.text, /orders-1/);
  assert.doesNotMatch(page.text, /Deregister|Check orders now/, "no write controls");
  const flags = await b.go("/ui/flags");
  assert.doesNotMatch(flags.text, /Sync now/);
  // Posting anyway (with a good CSRF token) is refused by the API's own authorization.
  const token = b.csrfOf(page.text);
  const dereg = await b.go(
    "/ui/registry/deregister",
    form({ service_name: "orders", instance_id: "orders-1" }, { "x-csrf-token": token }),
  );
  assert.match(dereg.text, /403/);
  assert.match(dereg.text, /lacks the scope registry:write/);
  const still = await send(svc.app, "GET", "/api/v1/registry/services/orders", undefined, {
    authorization: `Bearer ${ADMIN}`,
  });
  assert.equal(still.status, 200, "not deregistered");
  await still.body?.cancel();
});

Deno.test("console POSTs need the CSRF token and a same-host Origin", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" }));
  const reg = await send(svc.app, "POST", "/api/v1/registry/register", {
    service_name: "orders",
    service_url: "http://127.0.0.1:9",
    metadata: { instance_id: "orders-1" },
  });
  await reg.body?.cancel();
  const b = browser(svc);
  const page = await b.go("/ui/registry");
  const csrf = b.csrfOf(page.text);
  const fields = { service_name: "orders", instance_id: "orders-1" };
  const none = await b.go("/ui/registry/deregister", form(fields));
  assert.equal(none.res.status, 403);
  const other = await b.go(
    "/ui/registry/deregister",
    form(fields, { "x-csrf-token": csrf, origin: "https://evil.example" }),
  );
  assert.equal(other.res.status, 403);
  const wrong = await b.go(
    "/ui/registry/deregister",
    form(fields, { "x-csrf-token": "0".repeat(40) }),
  );
  assert.equal(wrong.res.status, 403);
  const listed = await send(svc.app, "GET", "/api/v1/registry/services/orders");
  assert.equal(listed.status, 200, "nothing happened");
  await listed.body?.cancel();
  const good = await b.go(
    "/ui/registry/deregister",
    form(fields, { "x-csrf-token": csrf, origin: "http://localhost" }),
  );
  assert.equal(good.res.status, 200);
  assert.match(good.text, /orders-1 deregistered/);
});

Deno.test("secrets are masked in the configuration list", async () => {
  await using svc = await startService(embeddedSettings());
  const res = await send(svc.app, "POST", "/api/v1/config", {
    key: "db_password",
    value: "hunter2-in-clear",
    environment: "development",
    secret: true,
  });
  assert.equal(res.status, 201);
  await res.body?.cancel();
  const page = await (await svc.app.request("/ui/config?environment=development")).text();
  assert.match(page, /db_password/);
  assert.doesNotMatch(page, /hunter2-in-clear/);
  assert.match(page, /secret, hidden/);
});

Deno.test("GET /api/v1/auth/whoami names the caller's token, or says the service is open", async () => {
  await using open = await startService(embeddedSettings());
  const o = await (await open.app.request("/api/v1/auth/whoami")).json();
  assert.equal(o.open, true);
  await using svc = await startService(embeddedSettings({ API_TOKENS: TOKENS }));
  const none = await svc.app.request("/api/v1/auth/whoami");
  assert.equal(none.status, 401);
  await none.body?.cancel();
  const me = await (await svc.app.request("/api/v1/auth/whoami", {
    headers: { authorization: `Bearer ${READER}` },
  })).json();
  assert.deepEqual(me, {
    open: false,
    name: "ui-reader",
    scopes: ["config:read", "registry:read", "flags:read"],
    environment: null,
  });
});

Deno.test("configuration through the console: create, edit, a stale edit gets the 412 view, diff, rollback", async () => {
  await using svc = await startService(embeddedSettings());
  const b = browser(svc);
  const list = await b.go("/ui/config?environment=development");
  const csrf = b.csrfOf(list.text);
  const created = await b.go(
    "/ui/config/create",
    form({ _csrf: csrf, environment: "development", key: "timeout", value: '{"ms": 100}' }),
  );
  assert.equal(created.res.status, 303);
  const entryUrl = created.res.headers.get("location")!;
  assert.equal(entryUrl, "/ui/config/entry?key=timeout&environment=development");
  const v1 = await b.go(entryUrl);
  const etag1 = /name="if_match" value="([^"]+)"/.exec(v1.text)![1].replaceAll("&quot;", '"');
  const save = (value: string, ifMatch: string) =>
    b.go(
      "/ui/config/save",
      form({
        _csrf: csrf,
        key: "timeout",
        environment: "development",
        service_name: "",
        if_match: ifMatch,
        value,
      }),
    );
  // Not JSON: refused before the API, what was typed kept.
  const bad = await save("{ms: 1", etag1);
  assert.match(bad.text, /400 Bad Request/);
  assert.match(bad.text, /is not valid JSON/);
  assert.match(bad.text, /\{ms: 1/);
  const edited = await save('{"ms": 250}', etag1);
  assert.equal(edited.res.status, 303);
  // A second page still holding v1's form: the 412 view with both values; nothing overwritten.
  const stale = await save('{"ms": 999}', etag1);
  assert.match(stale.text, /412 Precondition Failed/);
  assert.match(stale.text, /&quot;ms&quot;: 250/, "the current value");
  assert.match(stale.text, /&quot;ms&quot;: 999/, "yours, kept");
  const now = await (await svc.app.request("/api/v1/config/timeout?environment=development"))
    .json();
  assert.deepEqual(now.value, { ms: 250 });
  // The diff of v1 → v2, then a rollback to v1 makes v3 equal to v1.
  const diff = await b.go(`${entryUrl}&from=1&to=2`);
  assert.match(diff.text, /<span class="line del">- {3}&quot;ms&quot;: 100/);
  assert.match(diff.text, /<span class="line add">\+ {3}&quot;ms&quot;: 250/);
  const back = await b.go(
    "/ui/config/rollback",
    form({
      _csrf: csrf,
      key: "timeout",
      environment: "development",
      service_name: "",
      version: "1",
    }),
  );
  assert.equal(back.res.status, 303);
  const v3 = await (await svc.app.request("/api/v1/config/timeout?environment=development")).json();
  assert.equal(v3.version, 3);
  assert.deepEqual(v3.value, { ms: 100 });
});

Deno.test("flag strategies and constraints read as words", async () => {
  const { strategyWords } = await import("../routes/ui/flag_page.tsx");
  assert.equal(strategyWords({ name: "default" }), "on for everyone");
  assert.equal(
    strategyWords({
      name: "flexibleRollout",
      parameters: { rollout: "25", stickiness: "default", groupId: "checkout" },
      constraints: [
        { contextName: "region", operator: "IN", values: ["eu", "us"] },
        { contextName: "appVersion", operator: "SEMVER_LT", value: "2.0.0", inverted: true },
      ],
      segments: [3],
    }),
    "on for 25% of users (group checkout) when region is one of eu, us and " +
      "not (appVersion is a version before 2.0.0) and in segment 3",
  );
  assert.equal(
    strategyWords({ name: "userWithId", parameters: { userIds: "u1, u2,u3" } }),
    "on for the users u1, u2, u3",
  );
  assert.equal(
    strategyWords({ name: "myCustom", parameters: { a: "1" }, disabled: true }),
    "custom strategy myCustom (a=1) (disabled)",
  );
});

Deno.test("a flag's page shows its strategies in words and its variants", async () => {
  const file = tempFile({ suffix: ".json" });
  Deno.writeTextFileSync(
    file,
    JSON.stringify({
      version: 1,
      features: [{
        name: "new-checkout",
        enabled: true,
        strategies: [{
          name: "flexibleRollout",
          parameters: { rollout: "50", stickiness: "userId", groupId: "nc" },
          constraints: [{ contextName: "region", operator: "IN", values: ["eu"] }],
        }],
        variants: [{ name: "blue", weight: 1000, stickiness: "userId" }],
      }],
    }),
  );
  await using svc = await startService(embeddedSettings({ FLAGS_FILE: file }));
  const page =
    await (await svc.app.request("/ui/flags/flag?name=new-checkout&environment=development"))
      .text();
  assert.match(page, /on for 50% of userId values \(group nc\) when region is one of eu/);
  assert.match(page, /<th scope="row">blue<\/th><td>100%<\/td>/);
});

Deno.test("the configuration page searches by key prefix (GET /api/v1/config?prefix=)", async () => {
  await using svc = await startService(embeddedSettings());
  for (const key of ["db.url", "db.pool", "dbx", "cache.ttl"]) {
    const r = await send(svc.app, "POST", "/api/v1/config", {
      key,
      value: 1,
      environment: "development",
    });
    assert.equal(r.status, 201);
    await r.body?.cancel();
  }
  const page = await (await svc.app.request("/ui/config?environment=development&prefix=db."))
    .text();
  const keys = [...page.matchAll(/<code>([a-z.]+)<\/code><\/a>/g)].map((m) => m[1]);
  assert.deepEqual(keys, ["db.pool", "db.url"]);
  const bad = await svc.app.request("/api/v1/config?environment=development&prefix=db%25");
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).errors[0].field, "prefix");
});

Deno.test("the registry table shows each instance's check latency: a dash before the first check, then milliseconds", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" }));
  const stub = stubInstance();
  try {
    const reg = await send(svc.app, "POST", "/api/v1/registry/register", {
      service_name: "orders",
      service_url: stub.url,
      metadata: { instance_id: "orders-1" },
    });
    assert.equal(reg.status, 201);
    await reg.body?.cancel();
    const cell = async () => {
      const html = await (await svc.app.request("/ui/registry/table")).text();
      assert.match(html, /<th scope="col">latency<\/th>/);
      const m = /<tr data-instance="orders-1">.*?<td class="latency">(.*?)<\/td>/s.exec(html);
      assert.ok(m, "a latency cell in orders-1's row");
      return m[1];
    };
    assert.equal(await cell(), '<span class="muted">—</span>');
    const check = await send(svc.app, "POST", "/api/v1/registry/services/orders/health", {});
    assert.equal(check.status, 200);
    await check.body?.cancel();
    const api = await (await svc.app.request("/api/v1/registry/services/orders")).json();
    const ms = api.instances[0].last_check_latency_ms;
    assert.equal(typeof ms, "number");
    assert.equal(await cell(), `${ms.toFixed(1)} ms`);
  } finally {
    await stub.server.shutdown();
  }
});

Deno.test("deleting, rolling back and deregistering ask first: the forms and buttons carry the dialog's question and action, and the script has no window.confirm", async () => {
  await using svc = await startService(embeddedSettings({ SERVICE_HEALTH_CHECK_ENABLED: "false" }));
  for (
    const [method, path, body] of [
      ["POST", "/api/v1/config", { key: "a.b", value: 1, environment: "development" }],
      ["PUT", "/api/v1/config/a.b", { value: 2, environment: "development" }],
      ["POST", "/api/v1/registry/register", {
        service_name: "orders",
        service_url: "http://127.0.0.1:9",
        metadata: { instance_id: "orders-1" },
      }],
    ] as const
  ) {
    const r = await send(svc.app, method, path, body);
    assert.ok(r.status < 300, `${path}: ${r.status}`);
    await r.body?.cancel();
  }
  const entry = await (await svc.app.request("/ui/config/entry?key=a.b&environment=development"))
    .text();
  assert.match(
    entry,
    /<form method="post" action="\/ui\/config\/delete" class="inline" data-confirm="Delete a\.b\?" data-confirm-detail="[^"]+" data-confirm-action="Delete" data-confirm-danger="true">/,
  );
  assert.match(
    entry,
    /<form method="post" action="\/ui\/config\/rollback" data-confirm="Roll a\.b back to v1\?" data-confirm-detail="v3 gets the value of v1;[^"]*" data-confirm-action="Roll back">/,
  );
  const registry = await (await svc.app.request("/ui/registry")).text();
  assert.match(
    registry,
    /hx-confirm="Deregister orders-1 of orders\?" data-confirm-detail="[^"]+" data-confirm-action="Deregister" data-confirm-danger="true"/,
  );
  const js = await (await svc.app.request("/ui/static/ui.js")).text();
  assert.doesNotMatch(js, /\bconfirm\(/, "no call of the browser's confirm()");
  assert.match(js, /showModal\(\)/);
});
