/**
 * What changed between two client-API documents of one environment, as flag events:
 * `created`, `removed`, `enabled`, `disabled` (only the on/off switch changed) or `updated`
 * (strategies, variants, segments it uses, …). The first document of an environment is a
 * baseline: no events.
 */
import type { FlagEvent } from "./store.ts";

interface Doc {
  features?: { name: string; enabled?: boolean; strategies?: { segments?: number[] }[] }[];
  segments?: { id: number }[];
}

function byKey<T>(items: T[] | undefined, key: (t: T) => string): Map<string, string> {
  return new Map((items ?? []).map((t) => [key(t), JSON.stringify(t)]));
}

export function diffDocuments(
  previous: string | null,
  next: string,
  environment: string,
  at: string,
): FlagEvent[] {
  if (previous === null) return [];
  const a = JSON.parse(previous) as Doc;
  const b = JSON.parse(next) as Doc;
  const before = byKey(a.features, (f) => f.name);
  const after = byKey(b.features, (f) => f.name);
  const segA = byKey(a.segments, (x) => String(x.id));
  const segB = byKey(b.segments, (x) => String(x.id));
  const changedSegments = new Set<number>();
  for (const id of new Set([...segA.keys(), ...segB.keys()])) {
    if (segA.get(id) !== segB.get(id)) changedSegments.add(Number(id));
  }
  const events: FlagEvent[] = [];
  const push = (flag: string, change: string) => events.push({ flag, environment, change, at });
  for (const f of b.features ?? []) {
    const old = before.get(f.name);
    if (old === undefined) {
      push(f.name, "created");
      continue;
    }
    const now = after.get(f.name)!;
    if (old !== now) {
      const o = JSON.parse(old);
      const sameButSwitch = JSON.stringify({ ...o, enabled: f.enabled }) === now;
      push(f.name, sameButSwitch ? (f.enabled ? "enabled" : "disabled") : "updated");
    } else if (
      changedSegments.size > 0 &&
      (f.strategies ?? []).some((st) => (st.segments ?? []).some((id) => changedSegments.has(id)))
    ) {
      push(f.name, "updated");
    }
  }
  for (const name of before.keys()) if (!after.has(name)) push(name, "removed");
  return events;
}
