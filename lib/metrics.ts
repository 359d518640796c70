/**
 * A small Prometheus registry (text format 0.0.4): counters and histograms with labels kept
 * on the main thread, and {@link renderCollected} for families read at scrape time (backend
 * states, actor queues, the actors' own counters: see routes/metrics.ts).
 */

type Labels = Record<string, string>;

function escape(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escape(values[i] ?? "")}"`).join(",")}}`;
}

function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly #values = new Map<string, { labels: string[]; v: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}
  inc(labels: readonly string[] = [], by = 1): void {
    const k = labels.join("\u0000");
    const e = this.#values.get(k);
    if (e) e.v += by;
    else this.#values.set(k, { labels: [...labels], v: by });
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const e of this.#values.values()) {
      out += `${this.name}${labelText(this.labelNames, e.labels)} ${num(e.v)}\n`;
    }
    return out;
  }
}

export interface HistogramSeries {
  labels: string[];
  counts: number[];
  sum: number;
  n: number;
}

export class Histogram implements Metric {
  readonly #series = new Map<string, HistogramSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {}
  /** The series of `labels`, to observe into without looking it up again (hot paths). */
  series(labels: readonly string[]): HistogramSeries {
    const k = labels.join("\u0000");
    let s = this.#series.get(k);
    if (!s) {
      s = { labels: [...labels], counts: new Array(this.buckets.length).fill(0), sum: 0, n: 0 };
      this.#series.set(k, s);
    }
    return s;
  }
  observeInto(s: HistogramSeries, value: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        s.counts[i]++;
        break;
      }
    }
    s.sum += value;
    s.n++;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    const names = [...this.labelNames, "le"];
    for (const s of this.#series.values()) {
      let cum = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cum += s.counts[i];
        out += `${this.name}_bucket${
          labelText(names, [...s.labels, num(this.buckets[i])])
        } ${cum}\n`;
      }
      out += `${this.name}_bucket${labelText(names, [...s.labels, "+Inf"])} ${s.n}\n`;
      out += `${this.name}_sum${labelText(this.labelNames, s.labels)} ${num(s.sum)}\n`;
      out += `${this.name}_count${labelText(this.labelNames, s.labels)} ${s.n}\n`;
    }
    return out;
  }
}

/** A family whose samples are read when scraped. */
export interface Sample {
  labels?: Labels;
  value: number;
}

export interface Collected {
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

export function renderCollected(c: Collected): string {
  let out = `# HELP ${c.name} ${c.help}\n# TYPE ${c.name} ${c.type}\n`;
  for (const s of c.samples) {
    const names = Object.keys(s.labels ?? {});
    out += `${c.name}${labelText(names, names.map((n) => s.labels![n]))} ${num(s.value)}\n`;
  }
  return out;
}

export class Registry {
  readonly #metrics: Metric[] = [];

  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    const c = new Counter(name, help, labels);
    this.#metrics.push(c);
    return c;
  }
  histogram(name: string, help: string, labels: readonly string[], buckets: readonly number[]) {
    const h = new Histogram(name, help, labels, buckets);
    this.#metrics.push(h);
    return h;
  }
  render(): string {
    return this.#metrics.map((m) => m.render()).join("");
  }
}

const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/** The process's registry and the metrics updated on the hot paths. */
export const metrics = new Registry();
export const httpDuration = metrics.histogram(
  "http_request_duration_seconds",
  "HTTP request duration by route pattern, method and status",
  ["method", "route", "status"],
  LATENCY_BUCKETS,
);
export const actorCallDuration = metrics.histogram(
  "actor_call_duration_seconds",
  "Round trip of a call to an actor (worker), by actor and outcome",
  ["actor", "outcome"],
  LATENCY_BUCKETS,
);
export const healthChecks = metrics.counter(
  "registry_health_checks_total",
  "Health checks of registered instances by result",
  ["result"],
);
/** Log lines dropped because stdout or stderr fell behind (see lib/log.ts); this isolate's. */
export const logLinesDropped = metrics.counter(
  "log_lines_dropped_total",
  "Log lines dropped because stdout or stderr could not keep up with them",
);
// Scraped as 0 before the first drop, so alerts see the series exist.
logLinesDropped.inc([], 0);
