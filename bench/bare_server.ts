/**
 * The baselines: bare `Deno.serve` answering a small JSON document to a GET, and, to a POST,
 * reading and parsing the JSON body and answering a small JSON document naming its
 * `flag_name` (the least any POST endpoint does). Prints its port.
 */
const body = JSON.stringify({ status: "healthy", service: "config-service", version: "1.0.0" });
const headers = { "content-type": "application/json" };

async function echo(req: Request): Promise<Response> {
  const b = await req.json() as { flag_name?: unknown };
  return new Response(JSON.stringify({ flag_name: b.flag_name ?? null, value: true }), { headers });
}

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ msg: "bare listening", port })),
}, (req) => req.method === "POST" ? echo(req) : new Response(body, { headers }));
