/**
 * Tests leave nothing behind in the temporary directory: they make temporary paths only
 * through tests/_helpers.ts (`tempDir`, `tempFile`, and the settings helpers), which remove
 * them when the test module ends.
 */
import assert from "node:assert/strict";
import { tempDir } from "./_helpers.ts";

const TESTS = new URL("./", import.meta.url);

Deno.test("a test module's temporary directories are gone when it ends", async () => {
  const tmp = tempDir("cs-tmpdir-");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", new URL("fixtures/temp_paths_module.ts", TESTS).pathname],
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.ok(out.success, dec.decode(out.stdout) + dec.decode(out.stderr));
  const left = [...Deno.readDirSync(tmp)].map((e) => e.name);
  assert.deepEqual(left, [], "nothing left in TMPDIR");
});

Deno.test("no test makes a temporary path but through tests/_helpers.ts", () => {
  const offenders: string[] = [];
  const walk = (dir: URL, rel: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
      else if (e.name.endsWith(".ts") && `${rel}${e.name}` !== "_helpers.ts") {
        const lines = Deno.readTextFileSync(new URL(e.name, dir)).split("\n");
        lines.forEach((l, i) => {
          if (/Deno\.makeTemp(Dir|File)/.test(l)) offenders.push(`tests/${rel}${e.name}:${i + 1}`);
        });
      }
    }
  };
  walk(TESTS, "");
  assert.deepEqual(offenders, [], "use tempDir() or tempFile() from tests/_helpers.ts");
});
