/**
 * Memory with a full cache: seeds N entries straight into a SQLite file, starts the service
 * on it, reads every entry once (so all are cached) and reports the service's RSS.
 */
import { openSqlite } from "../lib/backends/sqlite.ts";
import { SqliteConfigStore } from "../lib/config/sqlite_store.ts";
import { rssMiB, spawnChild } from "./service.ts";

export async function rssWithCachedEntries(
  n: number,
  extraEnv: Record<string, string> = {},
): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "cs-bench-rss-" });
  const db = openSqlite(dir);
  await new SqliteConfigStore(db).migrate();
  const now = new Date().toISOString();
  const ins = db.prepare(
    `INSERT INTO config_entries (environment, service, key, value, secret, description, version,
       created_at, updated_at, updated_by) VALUES ('development', 'svc', ?, ?, 0, NULL, 1, ?, ?, 'bench')`,
  );
  db.exec("BEGIN");
  for (let i = 0; i < n; i++) {
    ins.run(`key-${i}`, JSON.stringify(`value-${i}-abcdefghij`), now, now);
  }
  db.exec("COMMIT");
  db.close();
  const svc = await spawnChild("main.ts", {
    DATABASE_URL: "",
    REDIS_HOST: "",
    ZOOKEEPER_HOSTS: "",
    KAFKA_BOOTSTRAP_SERVERS: "",
    UNLEASH_URL: "",
    SERVICE_PORT: "0",
    SERVICE_HOST: "127.0.0.1",
    DATA_DIR: dir,
    LOG_LEVEL: "INFO",
    CONFIG_CACHE_MAX_ENTRIES: String(n),
    ...extraEnv,
  }, "config-service listening");
  try {
    const before = rssMiB(svc.child.pid);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++;
        const r = await fetch(
          `${svc.url}/api/v1/config/key-${i}?environment=development&service_name=svc`,
        );
        await r.body?.cancel();
        if (r.status !== 200) throw new Error(`key-${i}: ${r.status}`);
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    const busy = rssMiB(svc.child.pid);
    // V8's memory reducer compacts the heaps after some idle seconds: that is the steady
    // state a config service spends its life in.
    await new Promise((r) => setTimeout(r, 15_000));
    const after = rssMiB(svc.child.pid);
    // Every entry must still be cached: a second pass must not be slower than the first.
    return `- RSS with ${n} cached entries: ${after.toFixed(0)} MiB settled 15 s after the ` +
      `reads (${busy.toFixed(0)} MiB right after them; idle service before them: ` +
      `${before.toFixed(0)} MiB; cold reads filled the cache at ${Math.round(n / secs)} req/s)`;
  } finally {
    await svc.stop();
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const env = Object.fromEntries(Deno.args.slice(1).map((a) => a.split("=", 2)));
  console.log(await rssWithCachedEntries(Number(Deno.args[0] ?? 100_000), env));
}
