// Parses Prometheus text exposition with a real parser (parse-prometheus-text-format, a
// port of the Prometheus Python client's parser) and offers typed lookups.
//
// That parser folds every histogram family into one unlabelled sample, so labelled
// histograms are read a second time with their TYPE set to untyped: the parser then
// yields the _bucket, _sum and _count series with their labels intact.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export interface Sample { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }
export interface Family { name: string; help: string; type: string; metrics: Sample[] }
export interface Parsed { families: Map<string, Family>; series: Map<string, Sample[]> }

const parse = parsePrometheusTextFormat as unknown as (text: string) => Family[];

export function parseMetrics(text: string): Parsed {
  const families = new Map(parse(text).map((f) => [f.name, f]));
  const series = new Map<string, Sample[]>();
  for (const f of parse(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'))) {
    series.set(f.name, [...(series.get(f.name) ?? []), ...f.metrics]);
  }
  return { families, series };
}

function matches(sample: Sample, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v);
}

/** The value of the one sample of `name` with these labels; undefined when absent. */
export function value(parsed: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = parsed.families.get(name)?.metrics.find((s) => matches(s, labels));
  return sample?.value === undefined ? undefined : Number(sample.value);
}

export function typeOf(parsed: Parsed, name: string): string | undefined {
  return parsed.families.get(name)?.type;
}

/** A labelled histogram: its buckets in `le` order, count and sum. */
export function histogram(parsed: Parsed, name: string, labels: Record<string, string> = {}) {
  if (parsed.families.get(name)?.type !== 'HISTOGRAM') return undefined;
  const pick = (suffix: string) => (parsed.series.get(name + suffix) ?? []).filter((s) => matches(s, labels));
  const count = pick('_count')[0];
  const sum = pick('_sum')[0];
  if (!count || !sum) return undefined;
  const buckets = pick('_bucket')
    .map((s) => ({ le: s.labels!.le === '+Inf' ? Infinity : Number(s.labels!.le), count: Number(s.value) }))
    .sort((a, b) => a.le - b.le);
  return { count: Number(count.value), sum: Number(sum.value), buckets };
}
