/**
 * The service as deployed under 1,000 slow bodies: each connection sends a POST head for
 * `/api/v1/config` declaring 1 MB and then one byte. Reports the service's RSS growth, what
 * the connections were answered (the default 64 MiB budget admits 64 of them; the rest are
 * a 503 at once) and the p50/p99 of sequential `GET /health` while they are open.
 */
import { spawnService } from "./service.ts";
import { getLatencies, percentile, rssMiB, stallBodies } from "../tests/_slow_body.ts";

export async function serviceSlowBodies(count = 1000): Promise<string> {
  const svc = await spawnService();
  try {
    // Large bodies first, as a running service has seen (glibc then reuses heap pages).
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${svc.url}/api/v1/config`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: "k", environment: "development", value: "x".repeat(900_000) }),
      });
      await r.body?.cancel();
    }
    await getLatencies(`${svc.url}/health`, 100);
    const before = rssMiB(svc.child.pid);
    const stalled = await stallBodies(svc.port, count, 1_000_000, "/api/v1/config");
    try {
      await stalled.trickle(1);
      await new Promise((r) => setTimeout(r, 2000));
      const grown = rssMiB(svc.child.pid) - before;
      const lat = await getLatencies(`${svc.url}/health`, 200);
      const answered = await stalled.statuses(500);
      return `${count} slow 1 MB bodies against the service (default limits): RSS +${
        grown.toFixed(0)
      } MiB (from ${before.toFixed(0)} MiB); answered at once ${
        JSON.stringify(answered)
      } ("none": still being read); GET /health during them p50 ${
        percentile(lat, 50).toFixed(2)
      } ms, p99 ${percentile(lat, 99).toFixed(2)} ms`;
    } finally {
      stalled.close();
    }
  } finally {
    await svc.stop();
  }
}

if (import.meta.main) console.log(await serviceSlowBodies());
