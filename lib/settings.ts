/**
 * Settings: every environment variable of the seed's Configuration section plus ours,
 * parsed once at start with zod. Empty strings count as unset. A backend is used when its
 * variable is set; unset means the embedded default (SQLite, in-process registry, flags file).
 */
import { z } from "zod";

const bool = (def: boolean) =>
  z.string().optional().transform((v, ctx) => {
    if (v === undefined) return def;
    const s = v.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(s)) return true;
    if (["false", "0", "no", "off"].includes(s)) return false;
    ctx.addIssue({ code: "custom", message: `must be true or false (got "${v}")` });
    return z.NEVER;
  });

const num = (def: number, opts: { min?: number; max?: number; int?: boolean } = {}) =>
  z.string().optional().transform((v, ctx) => {
    if (v === undefined) return def;
    const n = Number(v.trim());
    const kind = opts.int ? "an integer" : "a number";
    const range = `${opts.min ?? "-∞"}–${opts.max ?? "∞"}`;
    if (
      v.trim() === "" || !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) ||
      (opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)
    ) {
      ctx.addIssue({ code: "custom", message: `must be ${kind} in ${range} (got "${v}")` });
      return z.NEVER;
    }
    return n;
  });

const str = (def: string) => z.string().optional().transform((v) => v ?? def);
const optStr = () => z.string().optional();
const list = (def: string) =>
  z.string().optional().transform((v) =>
    (v ?? def).split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  );
const url = (protocols: string[]) =>
  z.string().optional().refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL (${protocols.join(" or ")})` },
  );

/** `name=value,name=value` → map; used for per-environment Unleash tokens. */
const pairs = () =>
  z.string().optional().transform((v, ctx) => {
    const out: Record<string, string> = {};
    for (const part of (v ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
      const i = part.indexOf("=");
      if (i <= 0) {
        ctx.addIssue({ code: "custom", message: `must be name=value pairs (got "${part}")` });
        return z.NEVER;
      }
      out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
    return out;
  });

const schema = z.object({
  // Service
  SERVICE_NAME: str("config-service"),
  SERVICE_HOST: str("0.0.0.0"),
  SERVICE_PORT: num(8082, { min: 0, max: 65535, int: true }),
  SERVICE_INSTANCE_ID: str("config-service-1"),
  SERVICE_ADVERTISE_URL: url(["http:", "https:"]),
  LOG_LEVEL: z.string().optional().transform((v, ctx) => {
    const s = (v ?? "INFO").trim().toUpperCase();
    const map: Record<string, "debug" | "info" | "warn" | "error"> = {
      DEBUG: "debug",
      INFO: "info",
      WARN: "warn",
      WARNING: "warn",
      ERROR: "error",
      CRITICAL: "error",
    };
    if (!map[s]) {
      ctx.addIssue({ code: "custom", message: `must be DEBUG, INFO, WARNING or ERROR` });
      return z.NEVER;
    }
    return map[s];
  }),
  DATA_DIR: str("./data"),
  SHUTDOWN_TIMEOUT: num(10, { min: 0, max: 300 }),
  ACTOR_CALL_TIMEOUT_MS: num(5000, { min: 1, max: 600_000, int: true }),

  // Storage
  DATABASE_URL: url(["postgres:", "postgresql:", "postgresql+asyncpg:"]),
  DATABASE_POOL_SIZE: num(10, { min: 1, max: 200, int: true }),

  // Redis
  REDIS_HOST: optStr(),
  REDIS_PORT: num(6379, { min: 1, max: 65535, int: true }),
  REDIS_PASSWORD: optStr(),
  REDIS_DB: num(0, { min: 0, max: 15, int: true }),

  // ZooKeeper
  ZOOKEEPER_HOSTS: optStr(),
  ZOOKEEPER_BASE_PATH: z.string().optional().transform((v) => v ?? "/services").refine(
    (v) => v.startsWith("/") && !v.endsWith("/") || v === "/",
    { message: "must be an absolute ZooKeeper path such as /services" },
  ),
  ZOOKEEPER_CONNECTION_TIMEOUT: num(10, { min: 0.1, max: 600 }),
  ZOOKEEPER_SESSION_TIMEOUT: num(30, { min: 1, max: 600 }),
  ZOOKEEPER_INSTANCE_HEALTH_PATH: z.string().optional().transform((v) => v ?? "/actuator/health")
    .refine((v) => /^\/[\x21-\x7e]{0,512}$/.test(v) && !v.includes("//"), {
      message: "must be a URL path starting with / (no spaces), such as /actuator/health",
    }),

  // Kafka
  KAFKA_BOOTSTRAP_SERVERS: optStr(),
  KAFKA_TOPIC_CONFIG_UPDATES: str("config-updates"),
  FEATURE_FLAG_KAFKA_TOPIC: str("feature-flag-events"),
  REGISTRY_KAFKA_TOPIC: str("service-registry-events"),

  // Service registry and health monitoring
  SERVICE_REGISTRY_ENABLED: bool(true),
  SERVICE_HEALTH_CHECK_ENABLED: bool(true),
  SERVICE_HEALTH_CHECK_INTERVAL: num(30, { min: 0.1, max: 86_400 }),
  SERVICE_DEREGISTER_AFTER: num(600, { min: 0, max: 31_536_000 }),
  HEALTH_CHECK_TIMEOUT: num(3, { min: 0.01, max: 600 }),
  HEALTH_CHECK_MAX_RETRIES: num(3, { min: 0, max: 100, int: true }),
  HEALTH_CHECK_INITIAL_RETRY_DELAY: num(1, { min: 0, max: 3600 }),
  HEALTH_CHECK_MAX_RETRY_DELAY: num(30, { min: 0, max: 3600 }),
  HEALTH_CHECK_RETRY_BACKOFF: num(2, { min: 1, max: 100 }),
  HEALTH_CHECK_ADDITIONAL_ENDPOINTS: list("/ready,/live"),
  HEALTH_CHECK_CONCURRENCY: num(32, { min: 1, max: 10_000, int: true }),
  HEALTH_CHECK_ALLOWED_NETWORKS: list(""),

  // Unleash
  UNLEASH_URL: url(["http:", "https:"]),
  UNLEASH_APP_NAME: str("config-service"),
  UNLEASH_INSTANCE_ID: str("config-service-1"),
  UNLEASH_API_TOKEN: optStr(),
  UNLEASH_CLIENT_TOKENS: pairs(),
  UNLEASH_ENVIRONMENT: optStr(),
  UNLEASH_REFRESH_INTERVAL: num(15, { min: 0.1, max: 86_400 }),
  UNLEASH_METRICS_INTERVAL: num(60, { min: 1, max: 86_400 }),
  UNLEASH_DISABLE_METRICS: bool(false),
  UNLEASH_AUTO_SYNC_ENABLED: bool(true),
  UNLEASH_AUTO_SYNC_ON_STARTUP: bool(false),
  UNLEASH_SYNC_INTERVAL: num(30, { min: 0.1, max: 86_400 }),
  UNLEASH_SYNC_ENVIRONMENTS: list(""),
  FLAGS_FILE: optStr(),

  // Feature flags
  FEATURE_FLAG_CACHE_TTL: num(300, { min: 0, max: 31_536_000, int: true }),
  FEATURE_FLAG_FALLBACK_ENABLED: bool(true),

  // Environments
  SUPPORTED_ENVIRONMENTS: list("development,staging,production").refine(
    (l) => l.length > 0,
    { message: "must name at least one environment" },
  ),
  DEFAULT_ENVIRONMENT: str("development"),

  // Configuration entries
  CONFIG_MAX_VALUE_BYTES: num(262_144, { min: 1, max: 1_048_576, int: true }),
  CONFIG_CACHE_MAX_ENTRIES: num(100_000, { min: 0, max: 10_000_000, int: true }),
  CONFIG_NEAR_CACHE_ENTRIES: num(10_000, { min: 0, max: 1_000_000, int: true }),
  CONFIG_CHANGELOG_RETENTION: num(86_400, { min: 0, max: 31_536_000 }),
  CONFIG_ENCRYPTION_KEY: optStr(),

  // Security
  AUTH_REQUIRED: bool(false),
  API_TOKENS_FILE: optStr(),
  API_TOKENS: optStr(),
  RATE_LIMIT_PER_MINUTE: num(0, { min: 0, max: 10_000_000, int: true }),
  // Seconds without a byte of a request body before it is refused (408); bytes of bodies being
  // read at once, across requests, before 503 + Retry-After (at least one 1 MiB body).
  HTTP_BODY_IDLE_TIMEOUT: num(10, { min: 0.1, max: 3600 }),
  /** Answer HTTP/1.1 requests that ask for an h2c upgrade (lib/http/h2c.ts). */
  HTTP_H2C_COMPAT: bool(true),
  HTTP_BODY_BUDGET_BYTES: num(67_108_864, { min: 1_048_576, max: 1_099_511_627_776, int: true }),
  AUTH_FAILURES_PER_MINUTE: num(30, { min: 0, max: 10_000_000, int: true }),
  // Browser origins the Unleash Frontend API answers cross-origin (`*`: any); none: no CORS.
  CORS_ORIGINS: list("").refine(
    (l) => l.every((o) => o === "*" || /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o)),
    { message: "must be `*` or origins such as https://app.example.com (scheme, host, port)" },
  ),
});

/** Parsed settings; keys are the environment variable names. */
export type Settings = z.output<typeof schema>;

/** The variables {@link loadSettings} reads, in documentation order. */
export const SETTING_NAMES = Object.keys(schema.shape) as (keyof Settings)[];

/** Thrown when an environment variable has an invalid value; names every bad variable. */
export class SettingsError extends Error {
  override readonly name = "SettingsError";
  readonly variables: string[];
  constructor(issues: { variable: string; message: string }[]) {
    super(
      "Invalid configuration: " +
        issues.map((i) => `${i.variable} ${i.message}`).join("; "),
    );
    this.variables = issues.map((i) => i.variable);
  }
}

/**
 * Parses settings from an environment map (normally `Deno.env.toObject()`).
 * @throws {SettingsError} naming each variable whose value is not of the expected form.
 */
/** Lists where an explicitly empty value means "none" rather than "the default". */
const EMPTY_IS_EMPTY = new Set<string>(["HEALTH_CHECK_ADDITIONAL_ENDPOINTS"]);

export function loadSettings(env: Record<string, string | undefined>): Settings {
  const input: Record<string, string | undefined> = {};
  for (const name of SETTING_NAMES) {
    const v = env[name];
    if (v !== undefined && v.trim() === "" && EMPTY_IS_EMPTY.has(name)) input[name] = ",";
    else input[name] = v === undefined || v.trim() === "" ? undefined : v;
  }
  const r = schema.safeParse(input);
  const issues = r.success
    ? []
    : r.error.issues.map((i) => ({ variable: String(i.path[0] ?? "?"), message: i.message }));
  // Cross-field rule, checked on the raw values so it is reported with the field errors.
  const envs = (input.SUPPORTED_ENVIRONMENTS ?? "development,staging,production")
    .split(",").map((e) => e.trim()).filter(Boolean);
  const def = input.DEFAULT_ENVIRONMENT ?? "development";
  if (envs.length > 0 && !envs.includes(def)) {
    issues.push({
      variable: "DEFAULT_ENVIRONMENT",
      message: `must be one of SUPPORTED_ENVIRONMENTS (${envs.join(", ")})`,
    });
  }
  const synced = (input.UNLEASH_SYNC_ENVIRONMENTS ?? "").split(",").map((e) => e.trim())
    .filter(Boolean);
  const unknown = synced.filter((e) => !envs.includes(e));
  if (envs.length > 0 && unknown.length > 0) {
    issues.push({
      variable: "UNLEASH_SYNC_ENVIRONMENTS",
      message: `${unknown.join(", ")} not in SUPPORTED_ENVIRONMENTS (${envs.join(", ")})`,
    });
  }
  if (!r.success || issues.length > 0) throw new SettingsError(issues);
  return r.data;
}

/**
 * Which backend implementation each concern uses, derived from the settings: the `kind`s
 * `/health` reports under `backends`. `cache` is the shared cache, Redis or `none` (the
 * ConfigActor's in-process cache is there either way and is not a backend).
 */
export function backendKinds(s: Settings) {
  return {
    storage: s.DATABASE_URL ? "postgres" : "sqlite",
    cache: s.REDIS_HOST ? "redis" : "none",
    registry: s.ZOOKEEPER_HOSTS ? "zookeeper" : "embedded",
    events: s.KAFKA_BOOTSTRAP_SERVERS ? "kafka" : "none",
    flags: s.UNLEASH_URL ? "unleash" : "file",
  } as const;
}

/** The settings that are credentials: a worker receives only those it uses. */
export const CREDENTIALS = [
  "API_TOKENS",
  "API_TOKENS_FILE",
  "CONFIG_ENCRYPTION_KEY",
  "REDIS_PASSWORD",
  "DATABASE_URL",
  "UNLEASH_API_TOKEN",
  "UNLEASH_CLIENT_TOKENS",
] as const;
export type Credential = (typeof CREDENTIALS)[number];

/** `s` without the credentials not in `keep` (unset, or `{}` for the token map). */
export function withCredentials(s: Settings, keep: readonly Credential[]): Settings {
  const out: Settings = { ...s };
  for (const k of CREDENTIALS) {
    if (keep.includes(k)) continue;
    if (k === "UNLEASH_CLIENT_TOKENS") out[k] = {};
    else out[k] = undefined;
  }
  return out;
}
