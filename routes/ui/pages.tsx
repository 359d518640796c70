// Rendered once on the server (hono/jsx): no reconciliation, and a `key` would be printed
// as an attribute, so lists carry none.
// deno-lint-ignore-file jsx-key
/** The console's pages and fragments, from API answers (see mod.tsx). */
import type { Child } from "hono/jsx";
import { Badge, Head, Problem, When } from "./layout.tsx";
import type { ApiAnswer } from "./api.ts";
import { entryQuery } from "./config_pages.tsx";

type Json = Record<string, unknown>;

/** The API answer's body, or a problem box when it is not a 200. */
function ok<T>(a: ApiAnswer, render: (body: T) => Child): Child {
  if (a.status === 403) {
    return (
      <p class="muted">Your token may not read this ({(a.body as Json)?.detail as string}).</p>
    );
  }
  if (a.status !== 200) return <Problem status={a.status} body={a.body} />;
  return render(a.body as T);
}

interface InstanceView {
  instance_id: string;
  service_url: string;
  status: string;
  last_health_check: string | null;
  /** Absent from an older service's answer: shown as "—" like null. */
  last_check_latency_ms?: number | null;
  metadata: Record<string, string>;
  source: string;
}
interface ServiceView {
  service_name: string;
  instances: InstanceView[];
}

export function Overview(
  p: {
    health: ApiAnswer;
    services: ApiAnswer;
    flags: ApiAnswer;
    entries: ApiAnswer;
    environment: string;
  },
) {
  const h = p.health.body as {
    status?: string;
    version?: string;
    uptime_seconds?: number;
    backends?: Record<
      string,
      { status: string; kind?: string; latency_ms?: number; role?: string; error?: string }
    >;
    actors?: Record<string, { status?: string; ok?: boolean }>;
  };
  return (
    <>
      <section aria-labelledby="backends">
        <h2 id="backends">
          Service <Badge status={h.status ?? "unknown"} />
        </h2>
        <p class="muted">
          {`version ${h.version ?? "?"}, up ${Math.round(h.uptime_seconds ?? 0)} s`}
        </p>
        <table>
          <caption>Backends</caption>
          <Head cols={["backend", "kind", "status", "latency"]} />
          <tbody>
            {Object.entries(h.backends ?? {}).map(([name, b]) => (
              <tr>
                <th scope="row">{name}</th>
                <td>{b.kind ?? ""}{b.role ? ` (${b.role})` : ""}</td>
                <td>
                  <Badge status={b.status} />
                </td>
                <td>{b.latency_ms === undefined ? "—" : `${b.latency_ms} ms`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="counts" class="cards">
        <h2 id="counts" class="visually-hidden">Counts</h2>
        <div class="card">
          <h3>Configuration</h3>
          {ok<Json[]>(p.entries, (list) => (
            <p>
              <span class="big">{list.length > 1000 ? "1000+" : String(list.length)}</span>{" "}
              {`entries in ${p.environment}`}
            </p>
          ))}
          <a href="/ui/config">Open configuration</a>
        </div>
        <div class="card">
          <h3>Registry</h3>
          {ok<ServiceView[]>(p.services, (list) => {
            const all = list.flatMap((s) => s.instances);
            const healthy = all.filter((i) => i.status === "healthy").length;
            return (
              <p>
                <span class="big">{String(list.length)}</span>
                {` services, ${healthy} of ${all.length} instances healthy`}
              </p>
            );
          })}
          <a href="/ui/registry">Open registry</a>
        </div>
        <div class="card">
          <h3>Feature flags</h3>
          {ok<Json[]>(p.flags, (list) => (
            <p>
              <span class="big">{String(list.length)}</span>
              {` flags in ${p.environment}, ${list.filter((f) => f.enabled).length} enabled`}
            </p>
          ))}
          <a href="/ui/flags">Open flags</a>
        </div>
      </section>
    </>
  );
}

function EnvPicker(
  p: { action: string; environments: string[]; environment: string; children?: unknown },
) {
  return (
    <form method="get" action={p.action} class="filters">
      <label>
        Environment{" "}
        <select name="environment">
          {p.environments.map((e) => <option value={e} selected={e === p.environment}>{e}</option>)}
        </select>
      </label>
      {p.children}
      <button type="submit">Show</button>
    </form>
  );
}

interface Entry {
  key: string;
  value: unknown;
  service_name: string | null;
  secret: boolean;
  version: number;
  updated_by: string;
  updated_at: string;
}

export function ConfigPage(
  p: {
    list: ApiAnswer;
    environments: string[];
    environment: string;
    service: string;
    prefix: string;
    page: number;
    size: number;
  },
) {
  const q = listParams(p);
  return (
    <>
      <EnvPicker action="/ui/config" environments={p.environments} environment={p.environment}>
        <label>
          Service{" "}
          <input
            name="service_name"
            value={p.service}
            placeholder="all scopes"
            pattern="[A-Za-z0-9._\-]*"
          />
        </label>
        <label>
          Key prefix{" "}
          <input
            name="prefix"
            value={p.prefix}
            placeholder="e.g. db."
            pattern="[A-Za-z0-9._:\/\-]*"
          />
        </label>
      </EnvPicker>
      <p class="muted">Changes made anywhere show here as they happen.</p>
      <div
        id="entries"
        data-watch={`/ui/config/events?environment=${p.environment}`}
        hx-get={`/ui/config/table?${q}`}
        hx-trigger="refresh"
        hx-swap="innerHTML"
      >
        <ConfigTable {...p} />
      </div>
    </>
  );
}

type ListView = {
  list: ApiAnswer;
  environment: string;
  service: string;
  prefix: string;
  page: number;
  size: number;
};

/** The console's query of a configuration list (its own page parameters). */
function listParams(p: Omit<ListView, "list" | "size">, page = p.page): URLSearchParams {
  const q = new URLSearchParams({ environment: p.environment, page: String(page) });
  if (p.service) q.set("service_name", p.service);
  if (p.prefix) q.set("prefix", p.prefix);
  return q;
}

/**
 * One row of the entries table. A function called once per row rather than a component, and
 * When called likewise: each component element costs a JSX node, and 50 rows a page of them
 * were a measurable part of the page's CPU and garbage (bench/console.ts).
 */
function entryRow(e: Entry, environment: string) {
  const address = entryQuery({ key: e.key, environment, service_name: e.service_name });
  return (
    <tr>
      <th scope="row">
        <a href={`/ui/config/entry?${address}`}>
          <code>{e.key}</code>
        </a>
      </th>
      <td>{e.service_name ?? <span class="muted">global</span>}</td>
      <td class="value">
        {e.secret
          ? <span class="masked" aria-label="secret, hidden">••••••</span>
          : <code>{JSON.stringify(e.value).slice(0, 120)}</code>}
      </td>
      <td>{String(e.version)}</td>
      <td>
        {When({ at: e.updated_at })} <span class="muted">{e.updated_by}</span>
      </td>
    </tr>
  );
}

/** The entries table of a configuration list, with its pager (refreshed live, see ui.js). */
export function ConfigTable(p: ListView) {
  const link = (page: number) => `/ui/config?${listParams(p, page)}`;
  return (
    <>
      {ok<Entry[]>(p.list, (all) => {
        const rows = all.slice(0, p.size);
        return (
          <>
            <table class="entries">
              <caption>
                {`Entries ${p.page * p.size + 1}–${
                  p.page * p.size + rows.length
                } in ${p.environment}`}
              </caption>
              <Head cols={["key", "scope", "value", "version", "updated"]} />
              <tbody>{rows.map((e) => entryRow(e, p.environment))}</tbody>
            </table>
            <nav aria-label="Pages" class="pager">
              {p.page > 0 ? <a href={link(p.page - 1)} rel="prev">Previous</a> : null}
              {all.length > p.size ? <a href={link(p.page + 1)} rel="next">Next</a> : null}
            </nav>
          </>
        );
      })}
    </>
  );
}

/** A health check's latency: "12.3 ms", or a dash before the first check. */
export function Latency(p: { ms: number | null | undefined }) {
  if (typeof p.ms !== "number") return <span class="muted">—</span>;
  return <>{`${p.ms.toFixed(1)} ms`}</>;
}

export function RegistryTable(p: { services: ApiAnswer; canWrite: boolean }) {
  return (
    <>
      {ok<ServiceView[]>(
        p.services,
        (list) =>
          list.length === 0 ? <p class="muted">No service is registered.</p> : (
            <>
              {list.map((s) => {
                const healthy = s.instances.filter((i) => i.status === "healthy").length;
                return (
                  <section class="service" aria-labelledby={`svc-${s.service_name}`}>
                    <h2 id={`svc-${s.service_name}`}>
                      {s.service_name}{" "}
                      <span class="muted">{`${healthy}/${s.instances.length} healthy`}</span>
                    </h2>
                    {p.canWrite
                      ? (
                        <button
                          type="button"
                          id={`check-${s.service_name}`}
                          hx-post="/ui/registry/check"
                          hx-vals={JSON.stringify({ service_name: s.service_name })}
                          hx-target="#registry-result"
                        >
                          {`Check ${s.service_name} now`}
                        </button>
                      )
                      : null}
                    <table>
                      <caption class="visually-hidden">{`Instances of ${s.service_name}`}</caption>
                      <Head
                        cols={[
                          "instance",
                          "URL",
                          "status",
                          "last check",
                          "latency",
                          "source",
                          "metadata",
                        ]}
                        actions={p.canWrite}
                      />
                      <tbody>
                        {s.instances.map((i) => (
                          <tr data-instance={i.instance_id}>
                            <th scope="row">{i.instance_id}</th>
                            <td>
                              <code>{i.service_url}</code>
                            </td>
                            <td class="status">
                              <Badge status={i.status} />
                            </td>
                            <td>
                              <When at={i.last_health_check} />
                            </td>
                            <td class="latency">
                              <Latency ms={i.last_check_latency_ms} />
                            </td>
                            <td>{i.source}</td>
                            <td class="meta">
                              {Object.entries(i.metadata).map(([k, v]) => (
                                <span class="kv">{`${k}=${v}`}</span>
                              ))}
                            </td>
                            {p.canWrite
                              ? (
                                <td>
                                  {i.source === "api"
                                    ? (
                                      <button
                                        type="button"
                                        class="danger"
                                        id={`dereg-${s.service_name}-${i.instance_id}`}
                                        hx-post="/ui/registry/deregister"
                                        hx-vals={JSON.stringify({
                                          service_name: s.service_name,
                                          instance_id: i.instance_id,
                                        })}
                                        hx-confirm={`Deregister ${i.instance_id} of ${s.service_name}?`}
                                        data-confirm-detail="It leaves discover at once, and comes back when it registers again."
                                        data-confirm-action="Deregister"
                                        data-confirm-danger="true"
                                        hx-target="#registry-result"
                                      >
                                        {`Deregister ${i.instance_id}`}
                                      </button>
                                    )
                                    : <span class="muted">registered in ZooKeeper</span>}
                                </td>
                              )
                              : null}
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </section>
                );
              })}
            </>
          ),
      )}
    </>
  );
}

interface FlagView {
  name: string;
  enabled: boolean;
  type?: string;
  description?: string;
  stale?: boolean;
}

export function FlagsPage(
  p: { flags: ApiAnswer; environments: string[]; environment: string; canSync: boolean },
) {
  return (
    <>
      <EnvPicker action="/ui/flags" environments={p.environments} environment={p.environment} />
      {p.canSync
        ? (
          <form hx-post="/ui/flags/sync" hx-target="#sync-result" class="inline">
            <input type="hidden" name="environment" value={p.environment} />
            <button type="submit">Sync now</button>
            <span id="sync-result" aria-live="polite"></span>
          </form>
        )
        : null}
      {ok<FlagView[]>(p.flags, (flags) => (
        <>
          <table>
            <caption>{`Flags in ${p.environment}`}</caption>
            <Head cols={["flag", "state", "type", "description"]} />
            <tbody>
              {flags.map((f) => (
                <tr>
                  <th scope="row">
                    <a
                      href={`/ui/flags/flag?${new URLSearchParams({
                        name: f.name,
                        environment: p.environment,
                      })}`}
                    >
                      <code>{f.name}</code>
                    </a>
                  </th>
                  <td>
                    <Badge status={f.enabled ? "enabled" : "disabled"} />
                    {f.stale ? " stale" : ""}
                  </td>
                  <td>{f.type ?? ""}</td>
                  <td>{f.description ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <section aria-labelledby="playground">
            <h2 id="playground">Playground</h2>
            <form hx-post="/ui/flags/evaluate" hx-target="#evaluation" class="stack">
              <input type="hidden" name="environment" value={p.environment} />
              <label>
                Flag{" "}
                <select name="flag_name" required>
                  {flags.map((f) => <option value={f.name}>{f.name}</option>)}
                </select>
              </label>
              <label>
                User id <input name="user_id" autocomplete="off" />
              </label>
              <label>
                Context (JSON){" "}
                <textarea name="context" rows={3} placeholder='{"region": "eu"}'></textarea>
              </label>
              <button type="submit" id="evaluate">Evaluate</button>
            </form>
            <div id="evaluation" aria-live="polite"></div>
          </section>
        </>
      ))}
    </>
  );
}

export function PlaygroundResult(p: { result: Record<string, unknown> }) {
  const r = p.result;
  return (
    <dl class="result">
      <dt>value</dt>
      <dd>
        <code data-field="value">{JSON.stringify(r.value)}</code>
      </dd>
      <dt>variant</dt>
      <dd data-field="variant">{String(r.variant ?? "—")}</dd>
      <dt>reason</dt>
      <dd data-field="reason">{String(r.reason)}</dd>
      {r.error_code
        ? (
          <>
            <dt>error</dt>
            <dd data-field="error_code">{String(r.error_code)}</dd>
          </>
        )
        : null}
    </dl>
  );
}

export function SignIn(p: { next: string; csrf: string }) {
  return (
    <form method="post" action="/ui/sign-in" class="stack narrow">
      <input type="hidden" name="_csrf" value={p.csrf} />
      <input type="hidden" name="next" value={p.next} />
      <label>
        API token <input type="password" name="token" autocomplete="current-password" required />
      </label>
      <button type="submit">Sign in</button>
      <p class="muted">
        The token stays on the server; the browser keeps only a session cookie.
      </p>
    </form>
  );
}
