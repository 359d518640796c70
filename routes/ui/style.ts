/** The console's stylesheet: ours, small, served at /ui/static/ui.css. */
export const UI_CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --bg: #f6f8fa; --card: #fff; --line: #d0d7de;
  --accent: #0b5cad; --good: #116329; --good-bg: #dafbe1; --bad: #a40e26; --bad-bg: #ffebe9;
  --neutral-bg: #eaeef2; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 6px 10px; z-index: 2; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 24px; padding: 10px 24px;
  background: #24292f; color: #fff; }
.top a { color: #fff; text-decoration: none; padding: 4px 2px; }
.top a[aria-current="page"] { border-bottom: 2px solid #fff; }
.top a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
textarea:focus-visible { outline: 3px solid #f9a825; outline-offset: 2px; }
.brand { font-weight: 600; }
.top ul { display: flex; flex-wrap: wrap; gap: 16px; list-style: none; margin: 0; padding: 0; }
.who { margin-left: auto; display: flex; gap: 8px; align-items: center; }
.who.open { font-size: .85em; background: #7d4e00; color: #fff; padding: 2px 8px; border-radius: 10px; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.5rem; margin: 8px 0 16px; }
h2 { font-size: 1.15rem; margin: 24px 0 8px; }
table { width: 100%; border-collapse: collapse; background: var(--card); margin: 8px 0 16px;
  border: 1px solid var(--line); }
caption { text-align: left; font-weight: 600; padding: 6px 0; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
thead th { background: var(--neutral-bg); font-weight: 600; font-size: .9em; }
td.value code, td code, th code { word-break: break-all; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .85em;
  background: var(--neutral-bg); }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
.card h3 { margin: 0 0 6px; font-size: 1rem; }
.big { font-size: 1.6rem; font-weight: 600; }
button { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: #fff; color: var(--fg); cursor: pointer; }
button.danger { color: var(--bad); border-color: var(--bad); }
button.link { background: none; border: none; color: #fff; text-decoration: underline; }
input, select, textarea { font: inherit; padding: 5px 8px; border: 1px solid #8c959f;
  border-radius: 6px; background: #fff; color: var(--fg); }
.filters, .inline { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin: 8px 0; }
.stack { display: grid; gap: 10px; max-width: 560px; }
.stack label { display: grid; gap: 4px; }
.narrow { max-width: 380px; }
.problem { border: 1px solid var(--bad); background: var(--bad-bg); color: var(--bad);
  padding: 8px 12px; border-radius: 6px; margin: 8px 0; }
.problem p { margin: 4px 0 0; }
.note { background: var(--good-bg); color: var(--good); padding: 6px 10px; border-radius: 6px; }
.kv { display: inline-block; margin: 0 6px 2px 0; font-size: .85em; background: var(--neutral-bg);
  padding: 0 6px; border-radius: 4px; }
.result { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; }
.result dt { font-weight: 600; }
.result dd { margin: 0; }
.pager { display: flex; gap: 16px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
pre { background: var(--card); border: 1px solid var(--line); padding: 8px 10px; overflow-x: auto;
  margin: 0; border-radius: 6px; }
.diff pre { padding: 0; }
.diff .line { display: block; padding: 0 10px; white-space: pre; }
.diff .add { background: var(--good-bg); color: var(--good); }
.diff .del { background: var(--bad-bg); color: var(--bad); }
.sides { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
.check { display: flex !important; gap: 8px; align-items: center; }
details { margin: 8px 0 16px; }
summary { cursor: pointer; font-weight: 600; }
@media (max-width: 640px) {
  main { padding: 12px; }
  .top { padding: 8px 12px; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { position: absolute; left: -9999px; }
  tr { border-bottom: 1px solid var(--line); padding: 6px 0; }
  th, td { border: none; padding: 2px 10px; }
}
`;

/** The console's own script: JSON fields checked before sending, confirmations for forms. */
export const UI_JS = `"use strict";
// A JSON field refuses to submit text that is not JSON, and says why (the API checks again).
function checkJson(t) {
  let msg = "";
  try {
    JSON.parse(t.value);
  } catch (err) {
    msg = "Not valid JSON: " + err.message;
  }
  t.setCustomValidity(msg);
  const m = t.parentElement && t.parentElement.querySelector("[data-json-message]");
  if (m) m.textContent = msg || "Valid JSON";
}
document.addEventListener("input", (e) => {
  if (e.target.matches && e.target.matches("textarea[data-json]")) checkJson(e.target);
});
document.addEventListener("submit", (e) => {
  const f = e.target;
  f.querySelectorAll("textarea[data-json]").forEach(checkJson);
  if (!f.checkValidity()) {
    e.preventDefault();
    f.reportValidity();
    return;
  }
  if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) e.preventDefault();
}, true);
// A list with data-watch follows the configuration watch stream: each change refreshes it
// (htmx "refresh" trigger), a burst of changes once.
document.querySelectorAll("[data-watch]").forEach((el) => {
  const events = new EventSource(el.dataset.watch);
  let timer = 0;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => window.htmx && window.htmx.trigger(el, "refresh"), 150);
  };
  for (const type of ["created", "updated", "deleted", "rolled_back"]) {
    events.addEventListener(type, refresh);
  }
  window.addEventListener("pagehide", () => events.close());
});
`;
