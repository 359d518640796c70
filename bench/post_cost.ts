/**
 * What an actor hop costs the sending thread (`deno run -A bench/post_cost.ts`): the time
 * `worker.postMessage` takes when the worker is asleep (waiting for work) against when it is
 * awake, and one sequential round trip. The explanation in docs/benchmarks.md of the `/ready`
 * and evaluate ratios rests on these figures.
 */
const src = `self.onmessage = (e) => { if (e.data === "ping") self.postMessage("pong"); };`;
const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
const w = new Worker(url, { type: "module" });
const N = 20_000;
await new Promise((r) => setTimeout(r, 300));

let n = 0;
const t0 = performance.now();
await new Promise<void>((done) => {
  w.onmessage = () => ++n === N ? done() : w.postMessage("ping");
  w.postMessage("ping");
});
const roundTrip = (performance.now() - t0) * 1000 / N;

// Back to back: the worker is awake, draining its queue.
const t1 = performance.now();
for (let i = 0; i < N; i++) w.postMessage("x");
const awake = (performance.now() - t1) * 1000 / N;

// One post per timer tick: the worker has gone back to sleep before each.
let asleep = 0;
for (let i = 0; i < 2_000; i++) {
  await new Promise((r) => setTimeout(r, 0));
  const a = performance.now();
  w.postMessage("x");
  asleep += performance.now() - a;
}
console.log(
  `postMessage to a sleeping worker: ${(asleep * 1000 / 2_000).toFixed(2)} µs on the sender; ` +
    `to an awake one: ${awake.toFixed(2)} µs; sequential round trip: ${roundTrip.toFixed(1)} µs`,
);
w.terminate();
URL.revokeObjectURL(url);
