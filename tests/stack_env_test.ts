/**
 * `scripts/stack.sh env`, run from a copy of the script so that the repository's own
 * `.stack/` is left alone.
 */
import assert from "node:assert/strict";
import { decodeKey } from "../lib/config/secrets.ts";
import { tempDir } from "./_helpers.ts";

const STACK = new URL("../scripts/stack.sh", import.meta.url);

/** A copy of the repository's scripts/stack.sh in a fresh directory. */
function stackCopy(): { root: string; script: string } {
  const root = tempDir("cs-stack-");
  Deno.mkdirSync(`${root}/scripts`);
  Deno.copyFileSync(STACK, `${root}/scripts/stack.sh`);
  return { root, script: `${root}/scripts/stack.sh` };
}

async function env(script: string): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [script, "env"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stderr));
  return dec.decode(out.stdout);
}

/** The value `eval "$(stack.sh env)"` gives `name`. */
async function evaluated(script: string, name: string): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-c", `eval "$(bash "$0" env)" && printf '%s' "$${name}"`, script],
    stdin: "null",
    stdout: "piped",
  }).output();
  assert.ok(out.success);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("stack.sh env exports a development CONFIG_ENCRYPTION_KEY, the same on every call", async () => {
  const { root, script } = stackCopy();
  const text = await env(script);
  const key = await evaluated(script, "CONFIG_ENCRYPTION_KEY");
  assert.equal(decodeKey(key).length, 32, "32 bytes of base64: what the service accepts");
  assert.match(
    text,
    /^#.*development.*CONFIG_ENCRYPTION_KEY|^#.*CONFIG_ENCRYPTION_KEY.*development/im,
  );
  assert.equal(await evaluated(script, "CONFIG_ENCRYPTION_KEY"), key, "generated once, kept");
  const file = `${root}/.stack/encryption.key`;
  assert.equal(Deno.readTextFileSync(file).trim(), key, "kept under the stack's data dir");
  assert.equal(Deno.statSync(file).mode! & 0o077, 0, "readable by its owner only");
});

Deno.test("stack.sh env: another stack gets another key", async () => {
  const a = await evaluated(stackCopy().script, "CONFIG_ENCRYPTION_KEY");
  const b = await evaluated(stackCopy().script, "CONFIG_ENCRYPTION_KEY");
  assert.notEqual(a, b);
});
