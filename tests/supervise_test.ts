/**
 * scripts/supervise.sh, which the local stack runs Unleash under: a command that dies unasked
 * is started again and the restart is logged; SIGTERM ends command and supervision together;
 * a command that keeps dying at once is given up on. No server needed.
 */
import assert from "node:assert/strict";
import { tempDir, waitFor } from "./_helpers.ts";

const SUPERVISE = new URL("../scripts/supervise.sh", import.meta.url).pathname;

function supervise(dir: string, script: string): Deno.ChildProcess {
  return new Deno.Command("bash", {
    args: [SUPERVISE, "demo", "bash", "-c", script],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

async function readInt(path: string): Promise<number> {
  return Number((await Deno.readTextFile(path).catch(() => "0")).trim());
}

Deno.test("supervise.sh starts a command that died unasked again, and says so", async () => {
  const dir = tempDir();
  try {
    // First run: exit 7. Second run: stay up (exec sleep), with its pid in a file.
    const child = supervise(
      dir,
      "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; " +
        'if [ "$n" -ge 1 ]; then echo $$ > pid; exec sleep 30; fi; exit 7',
    );
    await waitFor(
      async () => (await readInt(`${dir}/count`)) === 2 && await readInt(`${dir}/pid`),
      10_000,
      "a second start",
    );
    const pid = await readInt(`${dir}/pid`);
    assert.ok(alive(pid), "the restarted command runs");
    child.kill("SIGTERM");
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text);
    assert.match(
      text,
      /^\[supervise [^\]]+\] demo exited unexpectedly \(status 7\); starting it again$/m,
    );
    assert.equal(text.match(/^\[supervise/gm)?.length, 1, text);
    assert.equal(alive(pid), false, "SIGTERM reached the supervised command");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervise.sh: SIGTERM ends the command and the supervision, with no restart", async () => {
  const dir = tempDir();
  try {
    const child = supervise(dir, "echo $$ > pid; exec sleep 30");
    await waitFor(() => readInt(`${dir}/pid`), 10_000, "the command to start");
    const pid = await readInt(`${dir}/pid`);
    child.kill("SIGTERM");
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0);
    assert.doesNotMatch(text, /\[supervise/);
    assert.equal(alive(pid), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("supervise.sh gives up on a command that exits 3 times in a row right after starting", async () => {
  const dir = tempDir();
  try {
    const out = await supervise(dir, "exit 3").output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 1, text);
    assert.equal(
      text.match(/exited unexpectedly \(status 3\); starting it again/g)?.length,
      2,
      text,
    );
    assert.match(
      text,
      /demo exited \(status 3\) 3 times in a row within 15 s of starting; giving up/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
