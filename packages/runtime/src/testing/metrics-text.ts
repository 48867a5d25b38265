/**
 * For tests: scrapes a /metrics endpoint over HTTP and parses the Prometheus text format (0.0.4) into
 * samples, so assertions read what a Prometheus server would, not the registry in-process.
 */

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Scrape {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly samples: readonly MetricSample[];
  /** # TYPE of each metric family. */
  readonly types: ReadonlyMap<string, string>;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) !== null) {
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (pattern.lastIndex >= text.length) break;
  }
  if (pattern.lastIndex !== text.length && text.trim() !== '') throw new Error(`bad labels {${text}}`);
  return labels;
}

function parseValue(raw: string): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  // prom-client writes NaN as "Nan" (an event-loop-lag gauge before its first sample); Prometheus
  // reads it with Go's ParseFloat, which takes NaN in any case
  if (/^nan$/i.test(raw)) return NaN;
  const value = Number(raw);
  if (raw === '' || Number.isNaN(value)) throw new Error(`bad sample value "${raw}"`);
  return value;
}

/** Parses the text format; throws on a line that is not a comment, a blank or a sample. */
export function parseMetricsText(text: string): { samples: MetricSample[]; types: Map<string, string> } {
  const samples: MetricSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (!match) throw new Error(`not a metrics line: ${line}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[2] ?? ''), value: parseValue(match[3]!) });
  }
  return { samples, types };
}

export async function scrapeMetrics(url: string): Promise<Scrape> {
  const response = await fetch(url);
  const text = await response.text();
  const { samples, types } = response.ok ? parseMetricsText(text) : { samples: [], types: new Map<string, string>() };
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, samples, types };
}

/** The value of the one sample with this name whose labels include these; undefined when there is none. */
export function sampleValue(samples: readonly MetricSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value;
}
