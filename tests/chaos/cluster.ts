/**
 * The chaos run's two service replicas: real `deno run -A main.ts` processes on fixed loopback
 * ports, so a replica killed and started again answers at the same URL (clients, SSE watchers
 * and health checks keep their addresses). Each writes stdout and stderr to its own log file,
 * appended across restarts.
 */
import { childEnv } from "../_process.ts";
import { sleep } from "../_helpers.ts";
import type { Replica } from "./history.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * A free loopback TCP port below the kernel's ephemeral range (32768 and up here): a replica
 * is restarted on the same port, which an outgoing connection of any process may have taken
 * meanwhile if it were an ephemeral one. Chosen at random in 20000–32767, checked free.
 */
export function freePort(): number {
  for (let n = 0; n < 200; n++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken: another */ }
  }
  throw new Error("no free port in 20000-32767");
}

/** Where one replica stands, as the nemesis left it. */
/** `exited`: it ended without being asked to (see {@link ReplicaProcess.onUnaskedExit}). */
export type ReplicaState = "stopped" | "up" | "killed" | "paused" | "exited";

/**
 * One replica. `start()` spawns it (again) with the same environment and port; `kill()`
 * sends SIGKILL, `pause()`/`resume()` SIGSTOP/SIGCONT, `stop()` SIGTERM (SIGKILL after
 * `graceMs`). Signals go straight to the service: the shell that opens the log file `exec`s it.
 */
export class ReplicaProcess {
  readonly name: Replica;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly #env: Record<string, string>;
  #child: Deno.ChildProcess | null = null;
  #state: ReplicaState = "stopped";
  /** Whether the current process was told to end (kill, stop). */
  #asked = false;
  /** Times the replica was spawned (1 after the first start). */
  starts = 0;
  /**
   * Called when the process, once up (or paused), ends without a kill or stop of ours: a
   * crash, or a signal from elsewhere. The state is `exited` then; nothing restarts it here.
   */
  onUnaskedExit?: (status: Deno.CommandStatus) => void;

  constructor(opts: { name: Replica; port: number; logFile: string; env: Record<string, string> }) {
    this.name = opts.name;
    this.port = opts.port;
    this.url = `http://127.0.0.1:${opts.port}`;
    this.logFile = opts.logFile;
    this.#env = {
      ...opts.env,
      SERVICE_HOST: "127.0.0.1",
      SERVICE_PORT: String(opts.port),
      SERVICE_ADVERTISE_URL: this.url,
    };
  }

  get state(): ReplicaState {
    return this.#state;
  }

  /** The process id while one runs (killed or not yet reaped: the last one). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Spawns the replica and resolves once `GET /live` answers 200. A replica that exits before
   * it listens (its port still held by the dying one, a backend it needs at start being down)
   * is spawned again until `timeoutMs` (default 120 s) passes.
   * @throws {Error} naming the replica and its log file when it never listened.
   */
  async start(timeoutMs = 120_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let lastExit = "";
    while (Date.now() < end) {
      this.#spawn();
      const child = this.#child!;
      let exited: Deno.CommandStatus | null = null;
      child.status.then((s) => exited = s);
      while (Date.now() < end && exited === null) {
        if (await this.#live()) {
          this.#state = "up";
          return;
        }
        await sleep(200);
      }
      if (exited === null) break;
      lastExit = `exit code ${(exited as Deno.CommandStatus).code}`;
      await sleep(1_000);
    }
    this.#signal("SIGKILL");
    this.#state = "killed";
    throw new Error(
      `replica ${this.name} did not listen on ${this.url} within ${timeoutMs} ms` +
        `${lastExit ? ` (last attempt: ${lastExit})` : ""}; see ${this.logFile}`,
    );
  }

  /** SIGKILL, and waits until the process is gone (its port is free again). */
  async kill(): Promise<void> {
    this.#asked = true;
    this.#signal("SIGKILL");
    this.#state = "killed";
    await this.#child?.status;
  }

  /** SIGSTOP: the process keeps its sockets but answers nothing, not even ZooKeeper pings. */
  pause(): void {
    this.#signal("SIGSTOP");
    this.#state = "paused";
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.#signal("SIGCONT");
    if (this.#state === "paused") this.#state = "up";
  }

  /**
   * A graceful stop (SIGTERM; a paused replica is continued first so it can act on it),
   * SIGKILL after `graceMs`. Resolves once the process is gone.
   */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#asked = true;
    this.#signal("SIGCONT");
    this.#signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      child.status,
      new Promise((r) => timer = setTimeout(r, graceMs)),
    ]).finally(() => clearTimeout(timer));
    this.#signal("SIGKILL");
    await child.status;
    this.#state = "stopped";
  }

  #spawn(): void {
    // The shell opens the log for appending and `exec`s deno: the pid we signal is the
    // service's, and its output never passes through this process.
    this.#child = new Deno.Command("bash", {
      args: ["-c", 'exec "$0" run -A "$1" >>"$2" 2>&1', Deno.execPath(), MAIN, this.logFile],
      env: childEnv(this.#env, true),
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.starts++;
    this.#asked = false;
    const child = this.#child;
    child.status.then((s) => {
      if (this.#child !== child || this.#asked) return;
      if (this.#state !== "up" && this.#state !== "paused") return;
      this.#state = "exited";
      this.onUnaskedExit?.(s);
    });
  }

  #signal(sig: Deno.Signal): void {
    try {
      this.#child?.kill(sig);
    } catch { /* already gone */ }
  }

  async #live(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/live`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }
}

/** The two replicas, a and b, on one environment that differs only in id, port and data dir. */
export class Cluster {
  readonly replicas: Record<Replica, ReplicaProcess>;

  constructor(opts: {
    env: Record<string, string>;
    outDir: string;
    dataDir: string;
    runId: string;
  }) {
    const make = (name: Replica) =>
      new ReplicaProcess({
        name,
        port: freePort(),
        logFile: `${opts.outDir}/replica-${name}.log`,
        env: {
          ...opts.env,
          SERVICE_INSTANCE_ID: `chaos-${opts.runId}-${name}`,
          UNLEASH_INSTANCE_ID: `chaos-${opts.runId}-${name}`,
          DATA_DIR: `${opts.dataDir}/${name}`,
        },
      });
    this.replicas = { a: make("a"), b: make("b") };
  }

  get(name: Replica): ReplicaProcess {
    return this.replicas[name];
  }

  url(name: Replica): string {
    return this.replicas[name].url;
  }

  /** Starts a, then b (the first one creates the database schema). */
  async start(): Promise<void> {
    await this.replicas.a.start();
    await this.replicas.b.start();
  }

  /** Every replica running and not paused again (killed ones started). */
  async heal(): Promise<void> {
    for (const r of Object.values(this.replicas)) {
      if (r.state === "paused") r.resume();
      if (r.state === "killed" || r.state === "exited") await r.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(Object.values(this.replicas).map((r) => r.stop()));
  }
}
