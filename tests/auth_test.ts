/**
 * API tokens: 401 without or with a bad token, 403 without the scope, open endpoints, the
 * token name as `updated_by`, `?reveal=true` with `secrets:read`, per-token rate limits,
 * and start-up refusals (AUTH_REQUIRED without tokens, a broken token file).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { embeddedSettings, startService, tempDir, tempFile } from "./_helpers.ts";
import { runServiceOnce } from "./_process.ts";
import { parseInlineTokens, RateLimiter } from "../lib/auth.ts";
import { accessKey, accessTable, requestPath, scopesFor } from "../routes/access.ts";
import { newRouter } from "../routes/router.ts";

const READER = "reader-token-0123456789";
const WRITER = "writer-token-0123456789";
const SECRETS = "secrets-token-0123456789";
const ADMIN = "admin-token-0123456789ab";
const FLAGS = "flags-token-0123456789ab";

const INLINE = [
  `reader:${READER}:config:read,registry:read`,
  `writer:${WRITER}:config:read,config:write`,
  `vault:${SECRETS}:config:read,config:write,secrets:read`,
  `flags:${FLAGS}:flags:read`,
].join(";");

function tokenFile(): string {
  const path = tempFile({ suffix: ".json" });
  const sha = createHash("sha256").update(ADMIN).digest("hex");
  Deno.writeTextFileSync(
    path,
    JSON.stringify([{ name: "ops", token_sha256: sha, scopes: ["admin"] }]),
  );
  return path;
}

async function service(over: Record<string, string> = {}) {
  return await startService(
    embeddedSettings({ API_TOKENS: INLINE, API_TOKENS_FILE: tokenFile(), ...over }),
  );
}

type App = Awaited<ReturnType<typeof service>>["app"];

async function req(app: App, method: string, path: string, token?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const ENTRY = { key: "db_password", value: "hunter2", environment: "development" };

Deno.test("auth: 401 without or with a bad token, 403 without the scope", async () => {
  await using svc = await service();
  for (const auth of [undefined, "not-a-token"]) {
    const r = await req(svc.app, "GET", "/api/v1/config?environment=development", auth);
    assert.equal(r.status, 401);
    assert.match(r.headers.get("content-type")!, /application\/problem\+json/);
    assert.match(r.headers.get("www-authenticate")!, /^Bearer/);
  }
  const basic = await svc.app.request("/api/v1/config", { headers: { authorization: "Basic x" } });
  assert.equal(basic.status, 401);
  await basic.body?.cancel();

  const denied = await req(svc.app, "POST", "/api/v1/config", READER, ENTRY);
  assert.equal(denied.status, 403);
  assert.match(denied.body.detail, /config:write/);
  const created = await req(svc.app, "POST", "/api/v1/config", WRITER, ENTRY);
  assert.equal(created.status, 201);
  assert.equal(created.body.updated_by, "writer");
  assert.equal(
    (await req(svc.app, "GET", "/api/v1/config/db_password?environment=development", READER))
      .status,
    200,
  );
  // Registry and flags need their own scopes; admin has every scope.
  assert.equal((await req(svc.app, "GET", "/api/v1/registry/services", WRITER)).status, 403);
  assert.equal((await req(svc.app, "GET", "/api/v1/registry/services", READER)).status, 200);
  const ev = { flag_name: "x" };
  assert.equal(
    (await req(svc.app, "POST", "/api/v1/feature-flags/evaluate", READER, ev)).status,
    403,
  );
  assert.equal(
    (await req(svc.app, "POST", "/api/v1/feature-flags/evaluate", FLAGS, ev)).status,
    200,
  );
  assert.equal((await req(svc.app, "POST", "/ofrep/v1/evaluate/flags", FLAGS, {})).status, 200);
  const sync = "/api/v1/feature-flags/sync?environment=development";
  assert.equal((await req(svc.app, "POST", sync, FLAGS)).status, 403);
  assert.equal((await req(svc.app, "POST", sync, ADMIN)).status, 200);
  assert.equal(
    (await req(svc.app, "PUT", "/api/v1/config/db_password", ADMIN, { ...ENTRY, value: "x" })).body
      .updated_by,
    "ops",
  );
});

Deno.test("auth: health, docs and the root stay open", async () => {
  await using svc = await service();
  for (const path of ["/", "/health", "/live", "/ready", "/openapi.json", "/docs", "/redoc"]) {
    const res = await svc.app.request(path);
    assert.notEqual(res.status, 401, path);
    assert.notEqual(res.status, 403, path);
    await res.body?.cancel();
  }
});

Deno.test("auth: ?reveal=true needs secrets:read", async () => {
  await using svc = await service();
  assert.equal(
    (await req(svc.app, "POST", "/api/v1/config", SECRETS, { ...ENTRY, secret: true })).status,
    201,
  );
  const path = "/api/v1/config/db_password?environment=development";
  const masked = await req(svc.app, "GET", path, READER);
  assert.equal(masked.body.value, "******");
  const denied = await req(svc.app, "GET", `${path}&reveal=true`, READER);
  assert.equal(denied.status, 403);
  assert.match(denied.body.detail, /secrets:read/);
  const shown = await req(svc.app, "GET", `${path}&reveal=true`, SECRETS);
  assert.equal(shown.status, 200);
  assert.equal(shown.body.value, "hunter2");
  assert.equal(shown.headers.get("cache-control"), "no-store");
  // Masked again for everyone after a reveal (nothing cached in clear).
  assert.equal((await req(svc.app, "GET", path, SECRETS)).body.value, "******");
});

Deno.test("auth: without tokens the service is open, and reveal is refused", async () => {
  await using svc = await startService(embeddedSettings());
  const created = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json", "x-user": "alice" },
    body: JSON.stringify({ ...ENTRY, secret: true }),
  });
  assert.equal(created.status, 201);
  assert.equal((await created.json()).updated_by, "alice");
  const r = await req(
    svc.app,
    "GET",
    "/api/v1/config/db_password?environment=development&reveal=true",
  );
  assert.equal(r.status, 403);
});

Deno.test("auth: per-token rate limit answers 429 with Retry-After", async () => {
  await using svc = await service({ RATE_LIMIT_PER_MINUTE: "3" });
  const path = "/api/v1/config?environment=development";
  for (let i = 0; i < 3; i++) assert.equal((await req(svc.app, "GET", path, READER)).status, 200);
  const limited = await req(svc.app, "GET", path, READER);
  assert.equal(limited.status, 429);
  assert.match(limited.headers.get("content-type")!, /problem\+json/);
  const wait = Number(limited.headers.get("retry-after"));
  assert.ok(wait >= 1 && wait <= 20, `Retry-After ${wait}`);
  // Another token has its own budget; open endpoints are not limited.
  assert.equal((await req(svc.app, "GET", path, WRITER)).status, 200);
  for (let i = 0; i < 5; i++) {
    const res = await svc.app.request("/live");
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
});

Deno.test("auth: RateLimiter refills continuously", () => {
  const l = new RateLimiter(60);
  for (let i = 0; i < 60; i++) assert.equal(l.take("k", 0), 0);
  assert.equal(l.take("k", 0), 1);
  assert.equal(l.take("k", 1_000), 0); // one more after a second
});

Deno.test("auth: each route declares its scopes, read back from the route table", async () => {
  await using svc = await service();
  const table = accessTable(svc.app);
  const scopes = (method: string, path: string, url = "http://x/") =>
    scopesFor(table.get(accessKey(method, path))!, url);
  assert.deepEqual(scopes("GET", "/api/v1/config/:key", "http://x/a?reveal=true"), [
    "config:read",
    "secrets:read",
  ]);
  assert.deepEqual(scopes("HEAD", "/api/v1/config/:key"), ["config:read"]);
  assert.deepEqual(scopes("POST", "/api/v1/config/bulk"), ["config:read"]);
  assert.deepEqual(scopes("DELETE", "/api/v1/config/:key"), ["config:write"]);
  assert.deepEqual(scopes("POST", "/api/v1/registry/register"), ["registry:write"]);
  assert.deepEqual(scopes("POST", "/api/v1/feature-flags/sync"), ["flags:write"]);
  assert.deepEqual(scopes("GET", "/metrics"), ["admin"]);
  assert.equal(scopes("GET", "/health"), null);
  assert.equal(scopes("GET", "/docs/swagger-ui.css"), null);
  assert.throws(() => parseInlineTokens("a:short:admin"), /16 characters/);
  assert.throws(() => parseInlineTokens(`a:${READER}:config:delete`), /unknown scope/);
  assert.throws(() => parseInlineTokens("nonsense"), /name:token:scopes/);
});

Deno.test("auth: a route that declares no access fails the build of the app", () => {
  const app = newRouter();
  app.get("/undeclared", (c) => c.text("x"));
  assert.throws(() => accessTable(app), /route GET \/undeclared declares no access/);
});

Deno.test("auth: requestPath() gives one spelling of a path", () => {
  const p = (path: string) => requestPath(`http://h${path}`);
  assert.equal(p("/api/v1/config"), "/api/v1/config");
  assert.equal(p("/%61pi/v1/%63onfig?x=1"), "/api/v1/config");
  assert.equal(p("/%61PI/v1"), "/aPI/v1");
  assert.equal(p("//api//v1/./config/"), "/api/v1/config");
  assert.equal(p("/x/../api/v1/%2e/config/%2E%2e/config"), "/api/v1/config");
  assert.equal(p("/api/v1/config/a%2Fb"), "/api/v1/config/a%2Fb");
  assert.equal(p("/api/v1/config/a%25b"), "/api/v1/config/a%25b");
  assert.equal(p("/api/v1/config/caf%C3%A9"), "/api/v1/config/café");
  assert.equal(p("/api/v1/config/bad%ZZ%C3"), "/api/v1/config/bad%ZZ%C3");
  assert.equal(p("/"), "/");
  assert.equal(p("/../.."), "/");
});

Deno.test("auth: start-up refuses AUTH_REQUIRED without tokens and a broken token file", async () => {
  const dir = tempDir();
  const noTokens = await runServiceOnce({ DATA_DIR: dir, AUTH_REQUIRED: "true" });
  assert.equal(noTokens.code, 2);
  assert.match(noTokens.stderr, /AUTH_REQUIRED/);
  const bad = tempFile();
  Deno.writeTextFileSync(
    bad,
    JSON.stringify([{ name: "x", token_sha256: "abc", scopes: ["admin"] }]),
  );
  const broken = await runServiceOnce({ DATA_DIR: dir, API_TOKENS_FILE: bad });
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /API_TOKENS_FILE: 0\.token_sha256/);
});
