import assert from "node:assert/strict";
import { NearCache } from "../lib/near_cache.ts";
import { embeddedSettings, startService } from "./_helpers.ts";

const reply = (v: number) => ({ body: `{"version":${v}}`, etag: `"s${v}"`, stale: false });

Deno.test("NearCache.set() drops an answer requested before a forget (a late reply never brings an old value back)", () => {
  const c = new NearCache<ReturnType<typeof reply>>(10);
  const epoch = c.epoch;
  c.forget("dev\u0000k");
  c.set("dev\u0000k", "svc", reply(1), epoch);
  assert.equal(c.get("dev\u0000k", "svc"), undefined);
  c.set("dev\u0000k", "svc", reply(2), c.epoch);
  assert.deepEqual(c.get("dev\u0000k", "svc"), reply(2));
});

Deno.test("NearCache.forget() drops every scope of a key, since a service's answer may be the global entry", () => {
  const c = new NearCache<ReturnType<typeof reply>>(10);
  c.set("dev\u0000k", "a", reply(1), c.epoch);
  c.set("dev\u0000k", "", reply(1), c.epoch);
  c.set("dev\u0000other", "a", reply(1), c.epoch);
  c.forget("dev\u0000k");
  assert.equal(c.get("dev\u0000k", "a"), undefined);
  assert.equal(c.get("dev\u0000k", ""), undefined);
  assert.ok(c.get("dev\u0000other", "a"));
  assert.equal(c.size, 1);
});

Deno.test("NearCache holds at most its bound, least recently stored out", () => {
  const c = new NearCache<ReturnType<typeof reply>>(3);
  for (let i = 0; i < 5; i++) c.set(`dev\u0000k${i}`, "", reply(i), c.epoch);
  assert.equal(c.size, 3);
  assert.equal(c.get("dev\u0000k0", ""), undefined);
  assert.ok(c.get("dev\u0000k4", ""));
});

Deno.test("a GET answered from the near cache still reads this process's own write right after it", async () => {
  await using svc = await startService(embeddedSettings());
  const url = "/api/v1/config/hot?environment=development";
  const post = await svc.app.request("/api/v1/config", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: "hot", value: 0, environment: "development" }),
  });
  assert.equal(post.status, 201);
  const id = { environment: "development", service: "", key: "hot" };
  for (let v = 1; v <= 20; v++) {
    // Warm the near cache (a fill is refused while the last write's change event is in
    // flight), then write and read back at once.
    for (let i = 0; i < 50 && !svc.actors.config.getNear(id); i++) {
      assert.equal((await (await svc.app.request(url)).json()).value, v - 1);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(svc.actors.config.getNear(id), "near cache warm");
    const put = await svc.app.request("/api/v1/config/hot", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: v, environment: "development" }),
    });
    assert.equal(put.status, 200);
    assert.equal((await (await svc.app.request(url)).json()).value, v);
  }
});
