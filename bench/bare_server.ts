/** The baseline: bare `Deno.serve` answering a small JSON document. Prints its port. */
const body = JSON.stringify({ status: "healthy", service: "config-service", version: "1.0.0" });
Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ msg: "bare listening", port })),
}, () => new Response(body, { headers: { "content-type": "application/json" } }));
