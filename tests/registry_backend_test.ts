/** One contract for the registry's live view: embedded always, ZooKeeper when configured. */
import assert from "node:assert/strict";
import { EmbeddedRegistry, type RegistryBackend } from "../lib/registry/backend.ts";
import { serverTest, waitFor } from "./_helpers.ts";
import { apiInstance } from "./_zk.ts";

const instance = apiInstance;

type Make = () => Promise<{ backend: RegistryBackend; leaderships: boolean[] }>;

function contract(
  name: string,
  make: Make,
  register: (n: string, fn: () => Promise<void>) => void,
) {
  register(
    `${name}: put makes an instance live, again updates it, remove takes it out`,
    async () => {
      const { backend } = await make();
      try {
        await backend.put(instance("svc", "a"));
        await backend.put(instance("svc", "b"));
        await backend.put(instance("svc", "a", 9090));
        assert.deepEqual(await backend.live("svc"), ["a", "b"]);
        await backend.remove("svc", "a");
        assert.deepEqual(await backend.live("svc"), ["b"]);
        await backend.remove("svc", "missing");
        assert.deepEqual(await backend.live("other"), []);
      } finally {
        backend.close();
      }
    },
  );

  register(
    `${name}: putLater makes an instance live, forget only stops re-applying it`,
    async () => {
      const { backend } = await make();
      try {
        await backend.putLater(instance("svc", "later"));
        await waitFor(async () => (await backend.live("svc")).includes("later"), 5_000);
        backend.forget("svc", "later");
        await backend.remove("svc", "later");
        assert.deepEqual(await backend.live("svc"), []);
      } finally {
        backend.close();
      }
    },
  );

  register(`${name}: a single replica leads after start`, async () => {
    const { backend, leaderships } = await make();
    try {
      await waitFor(() => backend.leader, 5_000, "leadership");
      assert.equal(leaderships.at(-1), true);
    } finally {
      backend.close();
    }
  });
}

contract("embedded registry", () => {
  const leaderships: boolean[] = [];
  const backend = new EmbeddedRegistry({ onLeadership: (l) => leaderships.push(l) });
  backend.start();
  return Promise.resolve({ backend, leaderships });
}, (n, fn) => Deno.test(n, fn));

contract("zookeeper registry", async () => {
  const { ZookeeperRegistry } = await import("../lib/registry/zookeeper_registry.ts");
  const leaderships: boolean[] = [];
  const backend = new ZookeeperRegistry({
    hosts: Deno.env.get("ZOOKEEPER_HOSTS")!,
    basePath: `/cs-t-backend-${crypto.randomUUID().slice(0, 8)}`,
    sessionTimeoutMs: 6_000,
    connectTimeoutMs: 5_000,
    candidate: "contract",
    onLeadership: (l) => leaderships.push(l),
  });
  backend.start();
  await waitFor(() => backend.connected, 10_000, "zookeeper session");
  return { backend, leaderships };
}, (n, fn) => serverTest("zookeeper registry backend", ["ZOOKEEPER_HOSTS"], n, fn));
