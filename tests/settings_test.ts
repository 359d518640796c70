import assert from "node:assert/strict";
import { backendKinds, loadSettings, SettingsError } from "../lib/settings.ts";

Deno.test("loadSettings() gives the seed's defaults and the embedded backends", () => {
  const s = loadSettings({});
  assert.equal(s.SERVICE_NAME, "config-service");
  assert.equal(s.SERVICE_PORT, 8082);
  assert.equal(s.ZOOKEEPER_BASE_PATH, "/services");
  assert.equal(s.HEALTH_CHECK_TIMEOUT, 3);
  assert.deepEqual(s.HEALTH_CHECK_ADDITIONAL_ENDPOINTS, ["/ready", "/live"]);
  assert.deepEqual(s.SUPPORTED_ENVIRONMENTS, ["development", "staging", "production"]);
  assert.equal(s.FEATURE_FLAG_CACHE_TTL, 300);
  assert.equal(s.DATA_DIR, "./data");
  assert.deepEqual(backendKinds(s), {
    storage: "sqlite",
    cache: "none",
    registry: "embedded",
    events: "none",
    flags: "file",
  });
});

Deno.test("loadSettings() treats empty strings as unset", () => {
  const s = loadSettings({ REDIS_HOST: "", DATABASE_URL: "  ", SERVICE_PORT: "" });
  assert.equal(s.REDIS_HOST, undefined);
  assert.equal(s.DATABASE_URL, undefined);
  assert.equal(s.SERVICE_PORT, 8082);
});

Deno.test("loadSettings() throws SettingsError naming SERVICE_PORT for a non-numeric port", () => {
  assert.throws(() => loadSettings({ SERVICE_PORT: "abc" }), (e) => {
    assert.ok(e instanceof SettingsError);
    assert.deepEqual(e.variables, ["SERVICE_PORT"]);
    assert.match(e.message, /SERVICE_PORT must be an integer/);
    return true;
  });
});

Deno.test("loadSettings() names every invalid variable at once", () => {
  assert.throws(
    () =>
      loadSettings({
        SERVICE_HEALTH_CHECK_ENABLED: "maybe",
        DATABASE_URL: "mysql://x",
        DEFAULT_ENVIRONMENT: "qa",
        UNLEASH_SYNC_ENVIRONMENTS: "development,qa",
      }),
    (e) => {
      assert.ok(e instanceof SettingsError);
      assert.deepEqual(
        [...e.variables].sort(),
        [
          "DATABASE_URL",
          "DEFAULT_ENVIRONMENT",
          "SERVICE_HEALTH_CHECK_ENABLED",
          "UNLEASH_SYNC_ENVIRONMENTS",
        ],
      );
      return true;
    },
  );
});

Deno.test("loadSettings() parses booleans, lists and per-environment token pairs", () => {
  const s = loadSettings({
    UNLEASH_DISABLE_METRICS: "TRUE",
    SERVICE_REGISTRY_ENABLED: "0",
    SUPPORTED_ENVIRONMENTS: "dev, prod",
    DEFAULT_ENVIRONMENT: "dev",
    UNLEASH_CLIENT_TOKENS: "dev=default:dev.abc,prod=default:prod.x=y",
  });
  assert.equal(s.UNLEASH_DISABLE_METRICS, true);
  assert.equal(s.SERVICE_REGISTRY_ENABLED, false);
  assert.deepEqual(s.SUPPORTED_ENVIRONMENTS, ["dev", "prod"]);
  assert.deepEqual(s.UNLEASH_CLIENT_TOKENS, { dev: "default:dev.abc", prod: "default:prod.x=y" });
});

Deno.test("loadSettings() accepts the seed's postgresql+asyncpg URL form", () => {
  const s = loadSettings({ DATABASE_URL: "postgresql+asyncpg://u:p@db:5432/config_db" });
  assert.equal(backendKinds(s).storage, "postgres");
});

Deno.test("loadSettings() reads an empty HEALTH_CHECK_ADDITIONAL_ENDPOINTS as none, unset as the default", () => {
  assert.deepEqual(
    loadSettings({ HEALTH_CHECK_ADDITIONAL_ENDPOINTS: "" }).HEALTH_CHECK_ADDITIONAL_ENDPOINTS,
    [],
  );
  assert.deepEqual(loadSettings({}).HEALTH_CHECK_ADDITIONAL_ENDPOINTS, ["/ready", "/live"]);
});
