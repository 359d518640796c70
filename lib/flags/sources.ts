/**
 * Where flag definitions come from: the Unleash server's client API (a backend token per
 * environment) or, embedded, a file in the same JSON format.
 */
import type { BackendProbe } from "../backend.ts";
import { fetchClientFeatures, unleashProbe } from "../backends/unleash.ts";
import { ensureFlagsFile, flagsFileProbe } from "../backends/flags_file.ts";

export type SourceFetch =
  | { status: 200; etag: string | null; doc: unknown }
  | { status: 304; etag: string | null };

/** Usage counts of one environment since the last report (Unleash client metrics). */
export interface MetricsBucket {
  start: string;
  stop: string;
  toggles: Record<string, { yes: number; no: number; variants: Record<string, number> }>;
}

export interface FlagSource {
  readonly kind: "unleash" | "file";
  /** Seconds between two polls. */
  readonly pollSeconds: number;
  readonly probe: BackendProbe;
  /** @throws {Error} when the source cannot be read (the message names no secret). */
  fetch(env: string, etag: string | null, signal: AbortSignal): Promise<SourceFetch>;
  /** Reports usage to the source, when it takes any. */
  sendMetrics?(env: string, bucket: MetricsBucket, signal: AbortSignal): Promise<void>;
}

/**
 * `FLAGS_FILE`: one client-API document for every environment, or
 * `{"environments": {"<name>": <document>, ...}}`; an environment not listed has no flags.
 * Re-read when its modification time or size changes.
 */
export class FileFlagSource implements FlagSource {
  readonly kind = "file" as const;
  readonly pollSeconds = 1;
  readonly probe: BackendProbe;
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
    this.probe = flagsFileProbe(path);
    ensureFlagsFile(path);
  }

  async fetch(env: string, etag: string | null): Promise<SourceFetch> {
    const st = await Deno.stat(this.#path);
    const tag = `"${st.mtime?.getTime() ?? 0}-${st.size}"`;
    if (tag === etag) return { status: 304, etag };
    const text = await Deno.readTextFile(this.#path);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.#path} is not valid JSON: ${(err as Error).message}`);
    }
    const envs = (doc as { environments?: unknown })?.environments;
    if (envs !== undefined) {
      if (typeof envs !== "object" || envs === null || Array.isArray(envs)) {
        throw new Error(`${this.#path}: "environments" must be an object of documents`);
      }
      doc = (envs as Record<string, unknown>)[env] ?? { version: 2, features: [], segments: [] };
    }
    return { status: 200, etag: tag, doc };
  }
}

export interface UnleashSourceOptions {
  /** `UNLEASH_URL`, the API root (`…/api`). */
  url: string;
  /** `UNLEASH_API_TOKEN`: an admin token, used to provision missing backend tokens. */
  adminToken?: string;
  /** `UNLEASH_CLIENT_TOKENS`: environment → backend token. */
  clientTokens: Record<string, string>;
  appName: string;
  instanceId: string;
}

/**
 * The Unleash server. A backend token per environment comes from `UNLEASH_CLIENT_TOKENS`;
 * for an environment without one, the admin token finds (or creates) a backend token named
 * `<UNLEASH_APP_NAME>-<environment>` through the Admin API.
 */
export class UnleashFlagSource implements FlagSource {
  readonly kind = "unleash" as const;
  readonly pollSeconds: number;
  readonly probe: BackendProbe;
  readonly #o: UnleashSourceOptions;
  readonly #tokens = new Map<string, string>();
  readonly #api: string;

  constructor(o: UnleashSourceOptions, pollSeconds: number) {
    this.#o = o;
    this.pollSeconds = pollSeconds;
    this.probe = unleashProbe(o.url);
    this.#api = o.url.replace(/\/+$/, "");
    for (const [env, token] of Object.entries(o.clientTokens)) this.#tokens.set(env, token);
  }

  async #token(env: string, signal: AbortSignal): Promise<string> {
    const known = this.#tokens.get(env);
    if (known) return known;
    if (!this.#o.adminToken) {
      throw new Error(`no Unleash backend token for ${env} (UNLEASH_CLIENT_TOKENS)`);
    }
    const headers = { Authorization: this.#o.adminToken, "Content-Type": "application/json" };
    const tokenName = `${this.#o.appName}-${env}`;
    const list = await fetch(`${this.#api}/admin/api-tokens`, { headers, signal });
    if (!list.ok) {
      await list.body?.cancel();
      throw new Error(`Unleash Admin API answered HTTP ${list.status} listing tokens`);
    }
    const { tokens } = await list.json() as {
      tokens: { secret: string; tokenName?: string; type: string; environment: string }[];
    };
    let secret = tokens.find((t) =>
      t.tokenName === tokenName && t.environment === env &&
      ["client", "backend"].includes(t.type.toLowerCase())
    )?.secret;
    if (!secret) {
      const res = await fetch(`${this.#api}/admin/api-tokens`, {
        method: "POST",
        headers,
        signal,
        body: JSON.stringify({ tokenName, type: "backend", environment: env, projects: ["*"] }),
      });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(
          `Unleash Admin API answered HTTP ${res.status} creating a token for ${env}`,
        );
      }
      secret = (await res.json() as { secret: string }).secret;
    }
    this.#tokens.set(env, secret);
    return secret;
  }

  async fetch(env: string, etag: string | null, signal: AbortSignal): Promise<SourceFetch> {
    const token = await this.#token(env, signal);
    const r = await fetchClientFeatures(this.#api, token, {
      etag,
      appName: this.#o.appName,
      instanceId: this.#o.instanceId,
      signal,
    });
    return r.status === 304 ? r : { status: 200, etag: r.etag, doc: r.body };
  }

  async sendMetrics(env: string, bucket: MetricsBucket, signal: AbortSignal): Promise<void> {
    const token = await this.#token(env, signal);
    const res = await fetch(`${this.#api}/client/metrics`, {
      method: "POST",
      signal,
      headers: {
        Authorization: token,
        "Content-Type": "application/json",
        "UNLEASH-APPNAME": this.#o.appName,
        "UNLEASH-INSTANCEID": this.#o.instanceId,
      },
      body: JSON.stringify({
        appName: this.#o.appName,
        instanceId: this.#o.instanceId,
        environment: env,
        bucket,
      }),
    });
    await res.body?.cancel();
    if (!res.ok && res.status !== 202) {
      throw new Error(`Unleash client metrics answered HTTP ${res.status}`);
    }
  }
}
