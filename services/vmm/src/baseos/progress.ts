/** Progress of a base-OS build: phases with their duration, and the tools' own lines in between. */
export type BuildProgressEvent =
  | { readonly kind: 'phase-start'; readonly phase: string }
  | { readonly kind: 'phase-done'; readonly phase: string; readonly ms: number }
  | { readonly kind: 'log'; readonly line: string };

export type ProgressSink = (event: BuildProgressEvent) => void;

export interface PhaseTiming {
  readonly phase: string;
  readonly ms: number;
}

/** Runs named phases in order, reporting each one's start and duration. */
export class PhaseClock {
  readonly timings: PhaseTiming[] = [];
  constructor(private readonly sink: ProgressSink) {}

  async phase<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.sink({ kind: 'phase-start', phase: name });
    const started = performance.now();
    const result = await work();
    const ms = Math.round(performance.now() - started);
    this.timings.push({ phase: name, ms });
    this.sink({ kind: 'phase-done', phase: name, ms });
    return result;
  }

  log(line: string): void {
    this.sink({ kind: 'log', line });
  }
}

/** Human-readable progress on a stream (the CLI's and tests' default). */
export const printProgress =
  (out: NodeJS.WritableStream = process.stderr, verbose = false): ProgressSink =>
  (event) => {
    if (event.kind === 'phase-start') out.write(`==> ${event.phase}\n`);
    else if (event.kind === 'phase-done')
      out.write(`    ${event.phase}: ${(event.ms / 1000).toFixed(1)} s\n`);
    else if (verbose || /^(I|W|E): /.test(event.line)) out.write(`    ${event.line}\n`);
  };
