/**
 * Long work as idempotent steps ("measure, then act"): each step first measures whether its effect
 * is already there, so a retry or a restart re-runs a plan without doubling anything.
 */
export interface Step {
  readonly name: string;
  shouldDo(): Promise<boolean>;
  do(): Promise<void>;
}

export interface StepReport {
  readonly name: string;
  readonly skipped: boolean;
  readonly ms: number;
}

export async function runSteps(steps: readonly Step[], signal?: AbortSignal): Promise<StepReport[]> {
  const reports: StepReport[] = [];
  for (const step of steps) {
    signal?.throwIfAborted();
    const started = performance.now();
    const needed = await step.shouldDo();
    if (needed) await step.do();
    reports.push({ name: step.name, skipped: !needed, ms: Math.round(performance.now() - started) });
  }
  // A caller that gave up during the last step gets an error too, so it never leaves work it cannot see.
  signal?.throwIfAborted();
  return reports;
}

/** Serializes work per key (one VM's operations run one at a time; different VMs run in parallel). */
export class KeyedLock {
  private tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
