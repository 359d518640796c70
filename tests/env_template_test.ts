import assert from "node:assert/strict";
import { loadSettings, SETTING_NAMES } from "../lib/settings.ts";

const root = new URL("../", import.meta.url);

function templateVars(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Deno.readTextFileSync(new URL("env.template", root)).split("\n")) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

Deno.test("env.template lists every setting the service reads, and nothing else", () => {
  assert.deepEqual(Object.keys(templateVars()).sort(), [...SETTING_NAMES].sort());
});

Deno.test("env.template's values are valid settings", () => {
  loadSettings(templateVars());
});

Deno.test("docs/configuration.md documents every setting", () => {
  const doc = Deno.readTextFileSync(new URL("docs/configuration.md", root));
  const missing = SETTING_NAMES.filter((n) => !doc.includes(`\`${n}\``));
  assert.deepEqual(missing, []);
});
