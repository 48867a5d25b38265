/**
 * The process's Prometheus metrics: one prom-client Registry with the default process metrics, the
 * RPC latency histogram every gRPC wrapper records into, and small helpers services use for their own
 * metrics, so domain code and services never import prom-client themselves.
 */
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

let registry: Registry | undefined;
let rpcDuration: Histogram<'service' | 'method' | 'code'> | undefined;

/** The one registry of this process (created, with the default process metrics, on first use). */
export function metricsRegistry(): Registry {
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}

/** Seconds; RPCs range from a health check to a build stream of many minutes. */
const rpcBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/**
 * Records one finished RPC in kindling_rpc_duration_seconds. path is the gRPC path
 * ("/kindling.vmm.v1.VmmService/CreateVm"), code the status name ("OK", "NOT_FOUND").
 */
export function observeRpc(path: string, code: string, seconds: number): void {
  rpcDuration ??= new Histogram({
    name: 'kindling_rpc_duration_seconds',
    help: 'Duration of gRPC calls served, by service, method and status code (streams: until the handler ended)',
    labelNames: ['service', 'method', 'code'] as const,
    buckets: rpcBuckets,
    registers: [metricsRegistry()],
  });
  const slash = path.lastIndexOf('/');
  rpcDuration.observe({ service: path.slice(1, Math.max(1, slash)), method: path.slice(slash + 1), code }, seconds);
}

// A service registered twice in one process (tests start several) replaces its earlier metric.
function replacing(name: string): Registry {
  const target = metricsRegistry();
  target.removeSingleMetric(name);
  return target;
}

export interface CountsGaugeOptions {
  readonly name: string;
  readonly help: string;
  /** The one label the counts are by, e.g. "state". */
  readonly label: string;
  /** Label values always exported, 0 when absent, so a series does not vanish when its count drops to 0. */
  readonly values?: readonly string[];
  /** Called at scrape time: the current count per label value. */
  readonly count: () => Promise<ReadonlyMap<string, number>> | ReadonlyMap<string, number>;
  /** Told when count() fails; the gauge then keeps its last values. */
  readonly onError?: (error: unknown) => void;
}

/** A gauge of counts by one label, read at scrape time from count(). */
export function registerCountsGauge(options: CountsGaugeOptions): void {
  const { label, values = [], count } = options;
  new Gauge({
    name: options.name,
    help: options.help,
    labelNames: [label],
    registers: [replacing(options.name)],
    async collect() {
      let counts: ReadonlyMap<string, number>;
      try {
        counts = await count();
      } catch (error) {
        // a store that cannot be read now keeps the last counts rather than failing the whole scrape
        options.onError?.(error);
        return;
      }
      this.reset();
      for (const value of values) this.set({ [label]: value }, 0);
      for (const [value, n] of counts) this.set({ [label]: value }, n);
    },
  });
}

export interface DurationHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labels: readonly L[];
  /** Upper bounds in seconds. */
  readonly buckets: readonly number[];
}

/** A histogram of durations; returns the function that observes one, in seconds. */
export function registerDurationHistogram<L extends string>(options: DurationHistogramOptions<L>): (labels: Record<L, string>, seconds: number) => void {
  const histogram = new Histogram<L>({
    name: options.name,
    help: options.help,
    labelNames: options.labels,
    buckets: [...options.buckets],
    registers: [replacing(options.name)],
  });
  return (labels, seconds) => histogram.observe(labels as Partial<Record<L, string>>, seconds);
}
