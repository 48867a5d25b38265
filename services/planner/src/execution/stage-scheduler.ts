/**
 * Runs a build's stages as the graph their dependencies make, at most `limit` at once. A stage FROM
 * another stage boots from that stage's image, so it starts once that stage is done; a stage that
 * only copies or mounts from others (COPY --from, RUN --mount from=) starts as soon as those have
 * started, and waits for each (`awaitStage`) only at the step that reads it — as BuildKit overlaps a
 * stage's first steps with the stages it copies from. Dependencies always come earlier in the
 * Dockerfile, so starting in Dockerfile order never fills every slot with waiting stages.
 * The first failure stops the rest (their signal aborts) and is the one reported; the others'
 * errors are consequences of that stop.
 */
import type { PlannedStage } from '../domain/plan.ts';

/** Promise.withResolvers arrived in Node 22. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export type AwaitStage = (stageIndex: number) => Promise<void>;

export async function runStagesInOrder(
  stages: readonly PlannedStage[],
  limit: number,
  signal: AbortSignal,
  build: (stage: PlannedStage, signal: AbortSignal, awaitStage: AwaitStage) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const stageSignal = AbortSignal.any([signal, stop.signal]);
  const needed = new Set(stages.map((s) => s.index));
  const done = new Set<number>();
  const started = new Set<number>();
  const running = new Set<Promise<void>>();
  const finished = new Map(stages.map((s) => [s.index, deferred()]));
  let failure: { error: unknown } | undefined;

  const awaitStage: AwaitStage = async (index) => {
    const stageDone = finished.get(index);
    if (!stageDone || done.has(index)) return;
    stageSignal.throwIfAborted();
    const aborted = new Promise<never>((_resolve, reject) => stageSignal.addEventListener('abort', () => reject(stageSignal.reason), { once: true }));
    aborted.catch(() => {});
    await Promise.race([stageDone.promise, aborted]);
  };
  const baseStage = (stage: PlannedStage) => (stage.base?.kind === 'stage' ? stage.base.stageIndex : undefined);
  const ready = (stage: PlannedStage): boolean => {
    if (started.has(stage.index)) return false;
    const base = baseStage(stage);
    if (base !== undefined && needed.has(base) && !done.has(base)) return false;
    return stage.dependsOn.every((d) => !needed.has(d) || started.has(d));
  };

  while (done.size < stages.length && !failure) {
    for (const stage of stages) {
      if (running.size >= Math.max(1, limit) || failure || stageSignal.aborted) break;
      if (!ready(stage)) continue;
      started.add(stage.index);
      const task: Promise<void> = build(stage, stageSignal, awaitStage).then(
        () => {
          done.add(stage.index);
          finished.get(stage.index)?.resolve();
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
