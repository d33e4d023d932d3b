/**
 * A tiny Prometheus registry (text exposition format 0.0.4): counters with labels, kept in
 * this process. GET /metrics renders them with gauges read at scrape time.
 */
type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escape(labels[k]!)}"`)
    .join(",");

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${v}`);
    return lines.join("\n");
  }
}

/** A gauge rendered from values supplied at scrape time. */
export function renderGauge(name: string, help: string, values: [Labels, number][]): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
  for (const [labels, v] of values) {
    const k = key(labels);
    lines.push(`${name}${k ? `{${k}}` : ""} ${v}`);
  }
  return lines.join("\n");
}

export const metrics = {
  httpRequests: new Counter("postline_http_requests_total", "HTTP requests by method, route and status."),
  deliveryOutcomes: new Counter("postline_delivery_outcomes_total", "Recipient outcomes recorded by this process's delivery worker."),
};
