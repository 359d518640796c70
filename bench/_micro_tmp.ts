import { FlagSet } from "../lib/flags/engine.ts";
import {
  evaluateTyped,
  LocalUnleashProvider,
  openFeatureClient,
  unleashContext,
} from "../lib/flags/provider.ts";
import { BulkBody, EvaluateBody, typeAndDefault } from "../lib/flags/api.ts";
import { bulkFlags, flagDefinitions, flagsDocument } from "./flags.ts";

const set = FlagSet.from(flagsDocument());
const defs = flagDefinitions();
const provider = new LocalUnleashProvider(() => ({ set, freshness: "live" }), {
  fallback: true,
  defaultEnvironment: "development",
});
const client = await openFeatureClient(provider);
const regions = ["eu-west", "us-east", "ap-south"];

function time(label: string, n: number, f: (i: number) => unknown) {
  for (let i = 0; i < n / 10; i++) f(i);
  const t = performance.now();
  for (let i = 0; i < n; i++) f(i);
  const us = (performance.now() - t) * 1000 / n;
  console.log(`${label}: ${us.toFixed(2)} µs/op`);
}
async function timeA(label: string, n: number, f: (i: number) => Promise<unknown>) {
  for (let i = 0; i < n / 10; i++) await f(i);
  const t = performance.now();
  for (let i = 0; i < n; i++) await f(i);
  const us = (performance.now() - t) * 1000 / n;
  console.log(`${label}: ${us.toFixed(2)} µs/op`);
}
const N = 100000;
time(
  "engine FlagSet.evaluate",
  N,
  (i) =>
    set.evaluate(defs[i % 20].name, {
      environment: "development",
      userId: `user-${i}`,
      properties: { region: regions[i % 3], plan: "pro" },
    }),
);
time(
  "unleashContext",
  N,
  (i) =>
    unleashContext({
      region: regions[i % 3],
      plan: "pro",
      environment: "development",
      targetingKey: `user-${i}`,
      userId: `user-${i}`,
    }, "development"),
);
time(
  "provider.untyped",
  N,
  (i) =>
    provider.untyped(defs[i % 20].name, {
      region: regions[i % 3],
      plan: "pro",
      environment: "development",
      targetingKey: `user-${i}`,
      userId: `user-${i}`,
    }),
);
await timeA("evaluateTyped via OpenFeature client", N, (i) => {
  const d = defs[i % 20];
  const td = typeAndDefault(undefined, d.defaultValue, "x") as { type: "boolean"; def: unknown };
  return evaluateTyped(client, d.name, td.type, td.def, {
    region: regions[i % 3],
    plan: "pro",
    environment: "development",
    targetingKey: `user-${i}`,
    userId: `user-${i}`,
  });
});
const body = (i: number) =>
  `{"flag_name":"${defs[i % 20].name}","user_id":"user-${i}","context":{"region":"${
    regions[i % 3]
  }","plan":"pro"},"default_value":${
    JSON.stringify(defs[i % 20].defaultValue)
  },"environment":"development"}`;
time("JSON.parse + EvaluateBody.safeParse", N, (i) => EvaluateBody.safeParse(JSON.parse(body(i))));
const flags = JSON.stringify(bulkFlags());
const bbody = (i: number) =>
  `{"flags":${flags},"user_id":"user-${i}","context":{"region":"${
    regions[i % 3]
  }","plan":"pro"},"environment":"development"}`;
time(
  "JSON.parse + BulkBody.safeParse (20)",
  N / 10,
  (i) => BulkBody.safeParse(JSON.parse(bbody(i))),
);
