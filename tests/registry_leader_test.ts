import assert from "node:assert/strict";
import { serverTest, tempDir, waitFor } from "./_helpers.ts";
import { spawnService } from "./_process.ts";

async function role(url: string): Promise<string | undefined> {
  const res = await fetch(`${url}/health`);
  const body = await res.json();
  return body.backends?.registry?.role;
}

serverTest(
  "registry leadership",
  ["ZOOKEEPER_HOSTS"],
  "two replicas elect one leader, and the other takes over after kill -9 within the session timeout",
  async () => {
    const base = `/cs-t-leader-${crypto.randomUUID().slice(0, 8)}`;
    const env = (id: string) => ({
      DATA_DIR: tempDir(),
      SERVICE_INSTANCE_ID: id,
      ZOOKEEPER_HOSTS: Deno.env.get("ZOOKEEPER_HOSTS")!,
      ZOOKEEPER_BASE_PATH: base,
      ZOOKEEPER_SESSION_TIMEOUT: "4",
      DATABASE_URL: "",
      REDIS_HOST: "",
      KAFKA_BOOTSTRAP_SERVERS: "",
      UNLEASH_URL: "",
    });
    const a = await spawnService(env("leader-a"));
    let b: Awaited<ReturnType<typeof spawnService>> | null = null;
    try {
      await waitFor(async () => (await role(a.url)) === "leader", 15_000, "a leads");
      b = await spawnService(env("leader-b"));
      await waitFor(async () => (await role(b!.url)) === "follower", 15_000, "b follows");
      assert.equal(await role(a.url), "leader", "still exactly one leader");
      a.kill("SIGKILL");
      await a.status;
      const t0 = Date.now();
      await waitFor(async () => (await role(b!.url)) === "leader", 15_000, "b takes over");
      const took = Date.now() - t0;
      console.log(`leader failover after kill -9: ${took} ms (session timeout 4000 ms)`);
      // The session timeout and one election poll, with slack for a busy machine (the
      // parallel suite shares two cores).
      assert.ok(took < 4_000 + 1_000 + 4_000, `took ${took} ms`);
    } finally {
      a.kill("SIGKILL");
      await a.status;
      if (b) {
        b.kill("SIGTERM");
        await b.status;
      }
    }
  },
);
