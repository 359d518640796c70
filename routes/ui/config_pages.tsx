// Rendered once on the server (hono/jsx): no reconciliation, and a `key` would be printed
// as an attribute, so lists carry none.
// deno-lint-ignore-file jsx-key
/**
 * The console's configuration entry pages: one entry with its edit form (`If-Match` on every
 * write: a stale edit gets the 412 view with both values, nothing lost), its history with a
 * diff between any two versions (npm `diff`) and rollback, create and delete.
 */
import { diffLines } from "diff";
import { Head, Problem, When } from "./layout.tsx";

export interface EntryView {
  key: string;
  value: unknown;
  environment: string;
  service_name: string | null;
  description: string | null;
  secret: boolean;
  version: number;
  updated_by: string;
  updated_at: string;
}

export interface HistoryItem {
  version: number;
  value: unknown;
  change_type: string;
  secret: boolean;
  updated_by: string;
  updated_at: string;
}

/**
 * An entry's address as query parameters: `key=…&environment=…[&service_name=…]`. Written out
 * rather than through URLSearchParams, which cost ~7 % of the configuration page's CPU at 50
 * links a page (bench/console.ts); a key's characters (`[A-Za-z0-9._:/-]`) are encoded alike.
 */
export function entryQuery(e: { key: string; environment: string; service_name: string | null }) {
  const q = `key=${encodeURIComponent(e.key)}&environment=${encodeURIComponent(e.environment)}`;
  return e.service_name ? `${q}&service_name=${encodeURIComponent(e.service_name)}` : q;
}

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

function Hidden(
  p: { csrf: string; entry: { key: string; environment: string; service_name: string | null } },
) {
  return (
    <>
      <input type="hidden" name="_csrf" value={p.csrf} />
      <input type="hidden" name="key" value={p.entry.key} />
      <input type="hidden" name="environment" value={p.entry.environment} />
      <input type="hidden" name="service_name" value={p.entry.service_name ?? ""} />
    </>
  );
}

/** The value editor: JSON text, checked in the browser (ui.js) and again by the API. */
function ValueField(p: { value: string; label?: string }) {
  return (
    <label>
      {p.label ?? "Value (JSON)"}
      <textarea
        name="value"
        rows={8}
        required
        data-json
        spellcheck={false}
        aria-describedby="value-help"
      >
        {p.value}
      </textarea>
      <span id="value-help" class="muted" data-json-message>
        Any JSON value: "text", 42, true, {"{…}"}, [...]
      </span>
    </label>
  );
}

export function EntryPage(
  p: {
    entry: EntryView;
    etag: string;
    csrf: string;
    canWrite: boolean;
    revealed: boolean;
    canReveal: boolean;
    history: HistoryItem[] | null;
    diff: { from: number; to: number } | null;
  },
) {
  const e = p.entry;
  const q = entryQuery(e);
  const hidden = e.secret && !p.revealed;
  return (
    <>
      <p>
        <a href={`/ui/config?environment=${e.environment}`}>← all entries</a>
      </p>
      <dl class="result">
        <dt>scope</dt>
        <dd>
          {e.service_name ?? "global"} <span class="muted">in {e.environment}</span>
        </dd>
        <dt>version</dt>
        <dd data-field="version">{String(e.version)}</dd>
        <dt>updated</dt>
        <dd>
          <When at={e.updated_at} /> by {e.updated_by}
        </dd>
        <dt>value</dt>
        <dd>
          {hidden
            ? (
              <>
                <span class="masked" aria-label="secret, hidden">••••••</span> {p.canReveal
                  ? <a href={`/ui/config/entry?${q}&reveal=true`}>Reveal</a>
                  : <span class="muted">(revealing needs a token with secrets:read)</span>}
              </>
            )
            : <pre data-field="value">{pretty(e.value)}</pre>}
        </dd>
        {e.description
          ? (
            <>
              <dt>description</dt>
              <dd>{e.description}</dd>
            </>
          )
          : null}
      </dl>
      {p.canWrite && !hidden
        ? (
          <section aria-labelledby="edit">
            <h2 id="edit">Edit</h2>
            <form method="post" action="/ui/config/save" class="stack">
              <Hidden csrf={p.csrf} entry={e} />
              <input type="hidden" name="if_match" value={p.etag} />
              <ValueField value={pretty(e.value)} />
              <label>
                Description <input name="description" value={e.description ?? ""} />
              </label>
              <label class="check">
                <input type="checkbox" name="secret" value="true" checked={e.secret} /> Secret
              </label>
              <button type="submit">{`Save as version ${e.version + 1}`}</button>
            </form>
            <form
              method="post"
              action="/ui/config/delete"
              class="inline"
              data-confirm={`Delete ${e.key}?`}
              data-confirm-detail={e.service_name
                ? `${e.service_name} then reads the global ${e.key} of ${e.environment}, if there is one.`
                : `Services without their own ${e.key} then find none in ${e.environment}.`}
              data-confirm-action="Delete"
              data-confirm-danger="true"
            >
              <Hidden csrf={p.csrf} entry={e} />
              <input type="hidden" name="if_match" value={p.etag} />
              <button type="submit" class="danger">{`Delete ${e.key}`}</button>
            </form>
          </section>
        )
        : null}
      {p.history
        ? <History entry={e} items={p.history} csrf={p.csrf} canWrite={p.canWrite} diff={p.diff} />
        : null}
    </>
  );
}

function History(
  p: {
    entry: EntryView;
    items: HistoryItem[];
    csrf: string;
    canWrite: boolean;
    diff: { from: number; to: number } | null;
  },
) {
  const e = p.entry;
  /** The version a rollback makes. */
  const next = e.version + 1;
  const byVersion = new Map(p.items.map((h) => [h.version, h]));
  const versions = p.items.map((h) => h.version);
  const from = p.diff && byVersion.get(p.diff.from);
  const to = p.diff && byVersion.get(p.diff.to);
  return (
    <section aria-labelledby="history">
      <h2 id="history">History</h2>
      <form method="get" action="/ui/config/entry" class="filters">
        <input type="hidden" name="key" value={e.key} />
        <input type="hidden" name="environment" value={e.environment} />
        {e.service_name ? <input type="hidden" name="service_name" value={e.service_name} /> : null}
        <label>
          From{" "}
          <select name="from">
            {versions.map((v) => (
              <option value={String(v)} selected={v === (p.diff?.from ?? versions.at(-1))}>
                {`v${v}`}
              </option>
            ))}
          </select>
        </label>
        <label>
          To{" "}
          <select name="to">
            {versions.map((v) => (
              <option value={String(v)} selected={v === (p.diff?.to ?? versions[0])}>
                {`v${v}`}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Compare</button>
      </form>
      {from && to ? <Diff from={from} to={to} /> : null}
      <table>
        <caption class="visually-hidden">{`Versions of ${e.key}`}</caption>
        <Head cols={["version", "change", "value", "by", "at"]} actions={p.canWrite} />
        <tbody>
          {p.items.map((h) => (
            <tr data-version={String(h.version)}>
              <th scope="row">{`v${h.version}`}</th>
              <td>{h.change_type}</td>
              <td class="value">
                {h.secret
                  ? <span class="masked" aria-label="secret, hidden">••••••</span>
                  : <code>{JSON.stringify(h.value).slice(0, 120)}</code>}
              </td>
              <td>{h.updated_by}</td>
              <td>
                <When at={h.updated_at} />
              </td>
              {p.canWrite
                ? (
                  <td>
                    {h.version !== e.version && h.change_type !== "deleted"
                      ? (
                        <form
                          method="post"
                          action="/ui/config/rollback"
                          data-confirm={`Roll ${e.key} back to v${h.version}?`}
                          data-confirm-detail={`v${next} gets the value of v${h.version}; every version stays in the history.`}
                          data-confirm-action="Roll back"
                        >
                          <Hidden csrf={p.csrf} entry={e} />
                          <input type="hidden" name="version" value={String(h.version)} />
                          <button type="submit">{`Roll back to v${h.version}`}</button>
                        </form>
                      )
                      : null}
                  </td>
                )
                : null}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** A unified line diff of two versions' pretty-printed values. */
export function Diff(p: { from: HistoryItem; to: HistoryItem }) {
  if (p.from.secret || p.to.secret) {
    return <p class="muted">Secret versions are not compared here.</p>;
  }
  const parts = diffLines(pretty(p.from.value) + "\n", pretty(p.to.value) + "\n");
  return (
    <figure class="diff">
      <figcaption>{`v${p.from.version} → v${p.to.version}`}</figcaption>
      <pre>
        {parts.flatMap((part) =>
          part.value.replace(/\n$/, "").split("\n").map((line) => {
            const kind = part.added ? "add" : part.removed ? "del" : "same";
            const mark = part.added ? "+ " : part.removed ? "- " : "  ";
            return <span class={`line ${kind}`}>{mark + line + "\n"}</span>;
          })
        )}
      </pre>
    </figure>
  );
}

/** The 412 view: the edit was made on an older version; both values, and a way forward. */
export function ConflictPage(
  p: {
    mine: string;
    current: EntryView;
    etag: string;
    csrf: string;
    description: string;
    secret: boolean;
  },
) {
  const e = p.current;
  return (
    <>
      <div class="problem" role="alert">
        <strong>412 Precondition Failed</strong>
        <p>
          {`Someone saved ${e.key} (now version ${e.version}, by ${e.updated_by}) after you opened it. Nothing was overwritten; compare and choose.`}
        </p>
      </div>
      <div class="sides">
        <section aria-labelledby="theirs">
          <h2 id="theirs">{`Current (v${e.version})`}</h2>
          {e.secret
            ? <p class="muted">secret, hidden</p>
            : <pre data-field="current">{pretty(e.value)}</pre>}
        </section>
        <section aria-labelledby="mine">
          <h2 id="mine">Yours (not saved)</h2>
          <pre data-field="mine">{p.mine}</pre>
        </section>
      </div>
      <form method="post" action="/ui/config/save" class="stack">
        <Hidden csrf={p.csrf} entry={e} />
        <input type="hidden" name="if_match" value={p.etag} />
        <ValueField value={p.mine} label="Value to save over the current version (JSON)" />
        <input type="hidden" name="description" value={p.description} />
        {p.secret ? <input type="hidden" name="secret" value="true" /> : null}
        <button type="submit">{`Save yours as version ${e.version + 1}`}</button>
      </form>
      <p>
        <a href={`/ui/config/entry?${entryQuery(e)}`}>Discard yours and reload</a>
      </p>
    </>
  );
}

/** The create form on the configuration page. */
export function CreateForm(
  p: {
    csrf: string;
    environment: string;
    service: string;
    problem?: { status: number; body: unknown };
  },
) {
  return (
    <details open={p.problem !== undefined}>
      <summary>New entry</summary>
      {p.problem ? <Problem status={p.problem.status} body={p.problem.body} /> : null}
      <form method="post" action="/ui/config/create" class="stack">
        <input type="hidden" name="_csrf" value={p.csrf} />
        <input type="hidden" name="environment" value={p.environment} />
        <label>
          Key <input name="key" required pattern="[A-Za-z0-9._:\/\-]{1,256}" />
        </label>
        <label>
          Service{" "}
          <input
            name="service_name"
            value={p.service}
            placeholder="empty: global"
            pattern="[A-Za-z0-9._\-]*"
          />
        </label>
        <ValueField value="" />
        <label>
          Description <input name="description" />
        </label>
        <label class="check">
          <input type="checkbox" name="secret" value="true" /> Secret
        </label>
        <button type="submit">Create</button>
      </form>
    </details>
  );
}
