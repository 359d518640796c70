// deno-lint-ignore-file jsx-key -- rendered once on the server (see pages.tsx)
/**
 * The console's page frame and small shared pieces (hono/jsx, rendered on the server; htmx
 * swaps fragments). No inline script or style anywhere: the CSP allows only our own files.
 */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import type { Principal } from "./session.ts";

export const NAV = [
  ["/ui", "Overview"],
  ["/ui/config", "Configuration"],
  ["/ui/registry", "Registry"],
  ["/ui/flags", "Flags"],
] as const;

/**
 * htmx settings: no indicator styles (an inline <style>) and no eval, both barred by the CSP.
 * No settle delay: htmx wires up swapped-in controls only when the swap settles (20 ms later
 * by default, for CSS transitions we do not have), and a press of a control refreshed in that
 * window (the registry table every 2 s) would be lost.
 */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
  defaultSettleDelay: 0,
});

export function Layout(
  p: { title: string; path: string; principal: Principal | null; csrf: string; children: Child },
) {
  return (
    <>
      {raw("<!doctype html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="htmx-config" content={HTMX_CONFIG} />
          <title>{`${p.title} · config-service`}</title>
          <link rel="icon" href="data:," />
          <link rel="stylesheet" href="/ui/static/ui.css" />
          <script src="/ui/static/htmx.min.js" defer></script>
          <script src="/ui/static/ui.js" defer></script>
        </head>
        <body hx-headers={JSON.stringify({ "X-CSRF-Token": p.csrf })}>
          <a class="skip" href="#main">Skip to content</a>
          <header class="top">
            <span class="brand">config-service</span>
            <nav aria-label="Sections">
              <ul>
                {NAV.map(([href, label]) => (
                  <li>
                    <a href={href} aria-current={p.path === href ? "page" : undefined}>{label}</a>
                  </li>
                ))}
              </ul>
            </nav>
            {p.principal && !p.principal.open
              ? (
                <form method="post" action="/ui/sign-out" class="who">
                  <input type="hidden" name="_csrf" value={p.csrf} />
                  <span>{p.principal.name}</span>
                  <button type="submit" class="link">Sign out</button>
                </form>
              )
              : p.principal?.open
              ? <span class="who open" title="No API tokens are configured">open service</span>
              : null}
          </header>
          <main id="main">
            <h1>{p.title}</h1>
            {p.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** A status word as a badge, by its meaning. */
export function Badge(p: { status: string }) {
  const tone = /^(healthy|up|ok|true|enabled)$/.test(p.status)
    ? "good"
    : /^(unhealthy|down|false|failed)$/.test(p.status)
    ? "bad"
    : "neutral";
  return <span class={`badge ${tone}`}>{p.status}</span>;
}

/** A problem answer of the API, shown to people. */
export function Problem(p: { status: number; body: unknown }) {
  const b = (p.body ?? {}) as {
    title?: string;
    detail?: string;
    errors?: { field: string; message: string }[];
  };
  return (
    <div class="problem" role="alert">
      <strong>{`${p.status} ${b.title ?? ""}`}</strong>
      {b.detail ? <p>{b.detail}</p> : null}
      {b.errors?.length
        ? (
          <ul>
            {b.errors.map((e) => (
              <li>
                <code>{e.field}</code>: {e.message}
              </li>
            ))}
          </ul>
        )
        : null}
    </div>
  );
}

/** An ISO time as a readable UTC time, or a dash. */
export function When(p: { at: string | null | undefined }) {
  if (!p.at) return <span class="muted">—</span>;
  return <time datetime={p.at}>{p.at.replace("T", " ").replace(/\.\d+Z$/, "Z")}</time>;
}

/** A table head of column names, with a last unnamed (to the eye) column for actions. */
export function Head(p: { cols: string[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {p.cols.map((c) => <th scope="col">{c}</th>)}
        {p.actions
          ? (
            <th scope="col">
              <span class="visually-hidden">actions</span>
            </th>
          )
          : null}
      </tr>
    </thead>
  );
}
