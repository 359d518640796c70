/**
 * The real Unleash server's Admin API for tests: flags are created, changed and removed
 * inside each test (names prefixed by a random id, so suites never see each other's flags
 * as their own).
 */
import { rid } from "./_pg.ts";

export const UNLEASH_VARS = ["UNLEASH_URL", "UNLEASH_API_TOKEN", "UNLEASH_CLIENT_TOKENS"];

function env(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/** `UNLEASH_CLIENT_TOKENS` as a map. */
export function clientTokens(): Record<string, string> {
  return Object.fromEntries(
    env("UNLEASH_CLIENT_TOKENS").split(",").map((p) => {
      const i = p.indexOf("=");
      return [p.slice(0, i), p.slice(i + 1)];
    }),
  );
}

export interface StrategyInput {
  name: string;
  parameters?: Record<string, string>;
  constraints?: Record<string, unknown>[];
  variants?: Record<string, unknown>[];
}

/**
 * Runs `send` again while the connection is refused, for up to 30 s: the stack starts Unleash
 * again when it dies (scripts/supervise.sh, reported by .ci/run), and a refused connection never
 * reached the server, so sending the same request again is safe. Any other error is thrown.
 */
async function connectRetrying(send: () => Promise<Response>): Promise<Response> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      return await send();
    } catch (err) {
      const refused = /Connection refused/.test(`${err} ${(err as Error).cause ?? ""}`);
      if (!refused || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export class UnleashAdmin {
  readonly api = env("UNLEASH_URL").replace(/\/+$/, "");
  readonly #token = env("UNLEASH_API_TOKEN");
  readonly created: string[] = [];
  /** A fresh prefix for this test's flags. */
  readonly prefix = `it-${rid()}`;

  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await connectRetrying(() =>
      fetch(`${this.api}/admin${path}`, {
        method,
        headers: { Authorization: this.#token, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    );
    const text = await res.text();
    if (!res.ok) throw new Error(`Unleash ${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** Creates `<prefix>-<name>` with the strategies per environment, each switched on. */
  async flag(name: string, envs: Record<string, StrategyInput[]>): Promise<string> {
    const full = `${this.prefix}-${name}`;
    await this.#call("POST", "/projects/default/features", { name: full, type: "release" });
    this.created.push(full);
    for (const [e, strategies] of Object.entries(envs)) {
      for (const s of strategies) await this.addStrategy(full, e, s);
      await this.toggle(full, e, true);
    }
    return full;
  }

  async addStrategy(flag: string, environment: string, s: StrategyInput): Promise<string> {
    const r = await this.#call(
      "POST",
      `/projects/default/features/${flag}/environments/${environment}/strategies`,
      { constraints: [], parameters: {}, variants: [], ...s },
    ) as { id: string };
    return r.id;
  }

  async updateStrategy(flag: string, environment: string, id: string, s: StrategyInput) {
    await this.#call(
      "PUT",
      `/projects/default/features/${flag}/environments/${environment}/strategies/${id}`,
      { constraints: [], parameters: {}, variants: [], ...s },
    );
  }

  async strategies(flag: string, environment: string): Promise<{ id: string; name: string }[]> {
    return await this.#call(
      "GET",
      `/projects/default/features/${flag}/environments/${environment}/strategies`,
    ) as { id: string; name: string }[];
  }

  async toggle(flag: string, environment: string, on: boolean): Promise<void> {
    await this.#call(
      "POST",
      `/projects/default/features/${flag}/environments/${environment}/${on ? "on" : "off"}`,
    );
  }

  /** Usage Unleash has recorded for `flag` in the last hour, summed per environment. */
  async usage(flag: string): Promise<Record<string, { yes: number; no: number }>> {
    const r = await this.#call("GET", `/client-metrics/features/${flag}`) as {
      lastHourUsage: { environment: string; yes: number; no: number }[];
    };
    const out: Record<string, { yes: number; no: number }> = {};
    for (const u of r.lastHourUsage) {
      const e = out[u.environment] ??= { yes: 0, no: 0 };
      e.yes += u.yes;
      e.no += u.no;
    }
    return out;
  }

  /**
   * Archives every flag this admin created (archived flags leave the client API, so later
   * tests never see them), and deliberately does not delete them. Unleash 8.2 handles an
   * archive by inserting a `feature_lifecycles` row in the background; deleting the flag at
   * once made that insert fail its foreign key, and an unhandled rejection ends the whole
   * Unleash process there (the db-migrate it runs at startup installs a process-wide handler
   * that calls `process.exit(1)`). That crash broke a CI run; the stack is cleaned per clone.
   */
  async cleanup(): Promise<void> {
    for (const f of this.created) {
      try {
        await this.#call("DELETE", `/projects/default/features/${f}`);
      } catch { /* already archived */ }
    }
  }
}

/** A flags-file / client-API `flexibleRollout` strategy for `pct` % (group `g`). */
export const rollout = (pct: number, stickiness = "default") => ({
  name: "flexibleRollout",
  parameters: { rollout: String(pct), stickiness, groupId: "g" },
  constraints: [],
});
