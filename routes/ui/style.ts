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
dialog.confirm { max-width: min(32rem, calc(100vw - 32px)); border: 1px solid var(--line);
  border-radius: 8px; padding: 16px 20px; color: var(--fg); background: var(--card); }
dialog.confirm::backdrop { background: rgba(27, 31, 36, .45); }
dialog.confirm h2 { margin: 0 0 8px; }
dialog.confirm p { margin: 0 0 16px; }
dialog.confirm .actions { display: flex; flex-wrap: wrap; justify-content: flex-end; gap: 8px; }
dialog.confirm button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
dialog.confirm button.primary { background: var(--accent); border-color: var(--accent);
  color: #fff; }
@media (max-width: 640px) {
  main { padding: 12px; }
  .top { padding: 8px 12px; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { position: absolute; left: -9999px; }
  tr { border-bottom: 1px solid var(--line); padding: 6px 0; }
  th, td { border: none; padding: 2px 10px; }
}
`;

/**
 * The console's own script: JSON fields checked before sending, confirmations in a dialog of
 * ours, and the configuration list following the watch stream. No backtick or dollar-brace in
 * it: it is a template literal here.
 */
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

// Confirmations: a modal <dialog> of ours rather than window.confirm, which blocks the page,
// cannot be styled and cannot tell the destructive button from the other. A form with
// data-confirm (or an htmx control with hx-confirm) asks its question first; on the asking
// element, data-confirm-detail adds a sentence, data-confirm-action names the button that goes
// ahead ("Delete") and data-confirm-danger="true" marks it destructive. Cancel, or Escape, does
// nothing. The focus starts on Cancel and goes back to the control that asked.
let dialog = null;
function confirmDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "confirm";
  dialog.className = "confirm";
  // A question that needs an answer before anything else: an alert dialog (WAI-ARIA APG).
  dialog.setAttribute("role", "alertdialog");
  dialog.setAttribute("aria-labelledby", "confirm-question");
  const question = document.createElement("h2");
  question.id = "confirm-question";
  const detail = document.createElement("p");
  detail.id = "confirm-detail";
  const actions = document.createElement("div");
  actions.className = "actions";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.id = "confirm-cancel";
  cancel.textContent = "Cancel";
  cancel.addEventListener("click", () => dialog.close("cancel"));
  const go = document.createElement("button");
  go.type = "button";
  go.id = "confirm-go";
  go.addEventListener("click", () => dialog.close("confirm"));
  actions.append(cancel, go);
  dialog.append(question, detail, actions);
  document.body.append(dialog);
  return dialog;
}
// Resolves true when the person chose to go ahead. source: the element with the data-confirm-*
// attributes; back: the control to give the focus back to.
function ask(source, back, text) {
  const d = confirmDialog();
  if (d.open) return Promise.resolve(false);
  const info = source.dataset;
  d.querySelector("#confirm-question").textContent = text;
  const detail = d.querySelector("#confirm-detail");
  detail.textContent = info.confirmDetail || "";
  detail.hidden = !info.confirmDetail;
  if (info.confirmDetail) d.setAttribute("aria-describedby", "confirm-detail");
  else d.removeAttribute("aria-describedby");
  const go = d.querySelector("#confirm-go");
  go.textContent = info.confirmAction || "Confirm";
  go.className = info.confirmDanger === "true" ? "danger" : "primary";
  d.returnValue = "";
  return new Promise((resolve) => {
    d.addEventListener("close", () => {
      // A refresh may have replaced the control meanwhile: the one with its id now.
      const to = back && (back.isConnected ? back : back.id && document.getElementById(back.id));
      if (to) to.focus();
      resolve(d.returnValue === "confirm");
    }, { once: true });
    d.showModal();
    d.querySelector("#confirm-cancel").focus();
  });
}

const confirmed = new WeakSet();
document.addEventListener("submit", (e) => {
  const f = e.target;
  f.querySelectorAll("textarea[data-json]").forEach(checkJson);
  if (!f.checkValidity()) {
    e.preventDefault();
    f.reportValidity();
    return;
  }
  if (!f.dataset.confirm) return;
  // The second submit, after "Delete": it goes.
  if (confirmed.delete(f)) return;
  e.preventDefault();
  const submitter = e.submitter || f.querySelector("[type=submit]");
  ask(f, submitter, f.dataset.confirm).then((yes) => {
    if (!yes) return;
    confirmed.add(f);
    f.requestSubmit(submitter);
  });
}, true);

// htmx asks before a request of a control with hx-confirm (htmx falls back to window.confirm
// only if this script did not load).
const preconfirmed = new WeakSet();
document.addEventListener("htmx:confirm", (e) => {
  const el = e.detail.elt;
  if (!e.detail.question) return;
  e.preventDefault();
  if (preconfirmed.delete(el)) {
    e.detail.issueRequest(true);
    return;
  }
  ask(el, el, e.detail.question).then((yes) => {
    if (!yes) return;
    if (el.isConnected) {
      e.detail.issueRequest(true);
      return;
    }
    // htmx sends nothing for a control no longer in the page (a refresh swapped it while the
    // dialog opened): the same control, by id, in the refreshed part instead.
    const now = el.id && document.getElementById(el.id);
    if (!now) return;
    preconfirmed.add(now);
    now.click();
  });
});
// Nothing is swapped under an open confirmation (the registry refreshes every 2 s): the rows
// it speaks of stay, and so does the control the focus goes back to.
document.addEventListener("htmx:beforeRequest", (e) => {
  if (dialog && dialog.open) e.preventDefault();
});

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
