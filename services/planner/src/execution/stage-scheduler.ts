/**
 * Runs a build's stages as the graph their dependencies make: a stage starts once every stage it
 * needs is done, at most `limit` at once. The first failure stops the rest (their signal aborts) and
 * is the one reported; the others' errors are consequences of that stop.
 */
import type { PlannedStage } from '../domain/plan.ts';

export async function runStagesInOrder(
  stages: readonly PlannedStage[],
  limit: number,
  signal: AbortSignal,
  build: (stage: PlannedStage, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const stageSignal = AbortSignal.any([signal, stop.signal]);
  const needed = new Set(stages.map((s) => s.index));
  const done = new Set<number>();
  const started = new Set<number>();
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const ready = (stage: PlannedStage): boolean => !started.has(stage.index) && stage.dependsOn.every((d) => done.has(d) || !needed.has(d));
  while (done.size < stages.length && !failure) {
    for (const stage of stages) {
      if (running.size >= Math.max(1, limit) || failure || stageSignal.aborted) break;
      if (!ready(stage)) continue;
      started.add(stage.index);
      const task: Promise<void> = build(stage, stageSignal).then(
        () => {
          done.add(stage.index);
          running.delete(task);
        },
        (error: unknown) => {
          failure ??= { error };
          stop.abort(error);
          running.delete(task);
        },
      );
      running.add(task);
    }
    if (running.size === 0) {
      if (stageSignal.aborted) throw signal.aborted ? signal.reason : stop.signal.reason;
      if (done.size < stages.length) throw new Error(`stages ${stages.filter((s) => !done.has(s.index)).map((s) => s.index).join(', ')} can never start: their dependencies are not built`);
      break;
    }
    await Promise.race(running);
  }
  await Promise.allSettled(running);
  if (failure) throw failure.error;
}
