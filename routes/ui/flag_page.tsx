// Rendered once on the server (hono/jsx): no reconciliation, and a `key` would be printed
// as an attribute, so lists carry none.
// deno-lint-ignore-file jsx-key
/** One flag: its strategies and constraints in words, and its variants (console). */
import { Badge, Head } from "./layout.tsx";

interface Constraint {
  contextName: string;
  operator: string;
  values?: string[];
  value?: string;
  inverted?: boolean;
  caseInsensitive?: boolean;
}
interface Strategy {
  name: string;
  parameters?: Record<string, string>;
  constraints?: Constraint[];
  segments?: number[];
  disabled?: boolean;
}
interface Variant {
  name: string;
  weight: number;
  stickiness?: string;
  payload?: { type: string; value: string };
}
export interface FlagDetail {
  name: string;
  enabled: boolean;
  type?: string;
  description?: string;
  stale?: boolean;
  strategies: Strategy[];
  variants: Variant[];
}

const OPERATORS: Record<string, string> = {
  IN: "is one of",
  NOT_IN: "is none of",
  STR_CONTAINS: "contains",
  STR_STARTS_WITH: "starts with",
  STR_ENDS_WITH: "ends with",
  NUM_EQ: "=",
  NUM_GT: ">",
  NUM_GTE: "≥",
  NUM_LT: "<",
  NUM_LTE: "≤",
  DATE_AFTER: "is after",
  DATE_BEFORE: "is before",
  SEMVER_EQ: "is version",
  SEMVER_GT: "is a version after",
  SEMVER_LT: "is a version before",
};

const list = (v: string | undefined) =>
  (v ?? "").split(",").map((x) => x.trim()).filter(Boolean).join(", ") || "(none)";

/** A constraint in words: `region is one of eu, us` (`not (…)` when inverted). */
export function constraintWords(c: Constraint): string {
  const op = OPERATORS[c.operator] ?? c.operator;
  const vals = c.values?.length ? c.values.join(", ") : (c.value ?? "");
  const words = `${c.contextName} ${op} ${vals}${c.caseInsensitive ? " (any case)" : ""}`;
  return c.inverted ? `not (${words})` : words;
}

/** A strategy in words, as Unleash's built-in strategies mean them. */
export function strategyWords(s: Strategy): string {
  const p = s.parameters ?? {};
  let what: string;
  switch (s.name) {
    case "default":
      what = "on for everyone";
      break;
    case "flexibleRollout":
      what = `on for ${p.rollout ?? "0"}% of ${
        !p.stickiness || p.stickiness === "default" ? "users" : `${p.stickiness} values`
      }${p.groupId ? ` (group ${p.groupId})` : ""}`;
      break;
    case "gradualRolloutUserId":
    case "gradualRolloutSessionId":
    case "gradualRolloutRandom":
      what = `on for ${p.percentage ?? "0"}% ${
        s.name === "gradualRolloutRandom"
          ? "of requests, at random"
          : s.name === "gradualRolloutUserId"
          ? "of users"
          : "of sessions"
      }`;
      break;
    case "userWithId":
      what = `on for the users ${list(p.userIds)}`;
      break;
    case "remoteAddress":
      what = `on for the addresses ${list(p.IPs)}`;
      break;
    case "applicationHostname":
      what = `on for the hosts ${list(p.hostNames)}`;
      break;
    default:
      what = `custom strategy ${s.name}${
        Object.keys(p).length
          ? ` (${Object.entries(p).map(([k, v]) => `${k}=${v}`).join(", ")})`
          : ""
      }`;
  }
  const when = [
    ...(s.constraints ?? []).map(constraintWords),
    ...(s.segments ?? []).map((id) => `in segment ${id}`),
  ];
  return `${what}${when.length ? ` when ${when.join(" and ")}` : ""}${
    s.disabled ? " (disabled)" : ""
  }`;
}

export function FlagDetailView(p: { flag: FlagDetail; environment: string }) {
  const f = p.flag;
  const total = f.variants.reduce((a, v) => a + (v.weight || 0), 0) || 1;
  return (
    <>
      <p>
        <a href={`/ui/flags?environment=${p.environment}`}>← all flags</a>
      </p>
      <p>
        <Badge status={f.enabled ? "enabled" : "disabled"} /> in {p.environment}
        {f.type ? ` · ${f.type}` : ""}
        {f.stale ? " · stale" : ""}
      </p>
      {f.description ? <p>{f.description}</p> : null}
      <h2>Strategies</h2>
      {f.strategies.length === 0
        ? <p class="muted">No strategy: off for everyone.</p>
        : (
          <ol class="strategies">
            {f.strategies.map((s) => <li data-strategy={s.name}>{strategyWords(s)}</li>)}
          </ol>
        )}
      <p class="muted">The flag is on for a context when any strategy is.</p>
      <h2>Variants</h2>
      {f.variants.length === 0 ? <p class="muted">No variants.</p> : (
        <table>
          <Head cols={["variant", "share", "stickiness", "payload"]} />
          <tbody>
            {f.variants.map((v) => (
              <tr>
                <th scope="row">{v.name}</th>
                <td>{`${Math.round((v.weight / total) * 1000) / 10}%`}</td>
                <td>{v.stickiness ?? "default"}</td>
                <td>{v.payload ? <code>{`${v.payload.type}: ${v.payload.value}`}</code> : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
