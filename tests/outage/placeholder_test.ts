// Outage suites are added here; this keeps `deno test tests/outage/` from finding no module.
Deno.test("outage suites run after the parallel suite", () => {});
