import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlannedStage } from '../src/domain/plan.ts';
import { runStagesInOrder } from '../src/execution/stage-scheduler.ts';

/** A stage FROM `base` (a hard dependency) that copies from `copiesFrom`. */
const stage = (index: number, options: { base?: number; copiesFrom?: number[] } = {}): PlannedStage =>
  ({
    index,
    base: options.base === undefined ? { kind: 'scratch' } : { kind: 'stage', stageIndex: options.base },
    dependsOn: [...new Set([...(options.base === undefined ? [] : [options.base]), ...(options.copiesFrom ?? [])])].sort(),
  }) as unknown as PlannedStage;
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runStagesInOrder', () => {
  it('starts independent stages together, up to the limit, and a stage FROM another only after it', async () => {
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    await runStagesInOrder([stage(0), stage(1), stage(2), stage(3, { base: 0, copiesFrom: [1, 2] })], 2, new AbortController().signal, async (s) => {
      running += 1;
      peak = Math.max(peak, running);
      log.push(`start ${s.index}`);
      await tick(20);
      log.push(`end ${s.index}`);
      running -= 1;
    });
    assert.equal(peak, 2, 'never more than the limit at once');
    assert.deepEqual(log.slice(0, 2), ['start 0', 'start 1']);
    assert.ok(log.indexOf('start 3') > log.indexOf('end 0'), `stage 3 boots from stage 0: ${log.join(', ')}`);
    assert.ok(log.indexOf('start 3') < log.indexOf('end 2'), `stage 3 overlaps stage 2, which it only copies from: ${log.join(', ')}`);
  });

  it('runs one at a time with a limit of 1, in Dockerfile order', async () => {
    const log: number[] = [];
    await runStagesInOrder([stage(0), stage(1), stage(2, { copiesFrom: [0] })], 1, new AbortController().signal, async (s) => {
      log.push(s.index);
      await tick(5);
    });
    assert.deepEqual(log, [0, 1, 2]);
  });

  it('starts a stage that copies from another while that one runs, and awaitStage waits for it', async () => {
    const log: string[] = [];
    await runStagesInOrder([stage(0), stage(1, { copiesFrom: [0] })], 2, new AbortController().signal, async (s, _signal, awaitStage) => {
      log.push(`start ${s.index}`);
      if (s.index === 1) {
        log.push('1 waits for 0');
        await awaitStage(0);
        log.push('1 has 0');
      } else await tick(20);
      log.push(`end ${s.index}`);
    });
    assert.deepEqual(log, ['start 0', 'start 1', '1 waits for 0', 'end 0', '1 has 0', 'end 1']);
  });

  it('never fills the slots with stages waiting for one that cannot start', async () => {
    const log: number[] = [];
    // limit 1: stage 2 copies from 1, which is FROM 0; Dockerfile order starts 0, then 1, then 2
    await runStagesInOrder([stage(0), stage(1, { base: 0 }), stage(2, { copiesFrom: [1] })], 1, new AbortController().signal, async (s, _signal, awaitStage) => {
      log.push(s.index);
      if (s.index === 2) await awaitStage(1);
      await tick(5);
    });
    assert.deepEqual(log, [0, 1, 2]);
  });

  it('rejects a waiting stage when the build stops', async () => {
    let waitRejected = false;
    await assert.rejects(
      runStagesInOrder([stage(0), stage(1, { copiesFrom: [0] })], 2, new AbortController().signal, async (s, _signal, awaitStage) => {
        if (s.index === 0) {
          await tick(10);
          throw new Error('stage 0 broke');
        }
        await awaitStage(0).catch((error: unknown) => {
          waitRejected = true;
          throw error;
        });
      }),
      /stage 0 broke/,
    );
    assert.ok(waitRejected, 'the stage waiting for the failed one was released with an error');
  });

  it('stops the other stages on the first failure and reports that one', async () => {
    let siblingAborted = false;
    const started: number[] = [];
    await assert.rejects(
      runStagesInOrder([stage(0), stage(1), stage(2, { base: 0, copiesFrom: [1] })], 2, new AbortController().signal, async (s, signal) => {
        started.push(s.index);
        if (s.index === 0) {
          await tick(10);
          throw new Error('stage 0 broke');
        }
        await new Promise<void>((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            siblingAborted = true;
            reject(new Error('aborted'));
          }),
        );
      }),
      /stage 0 broke/,
    );
    assert.ok(siblingAborted, 'the running sibling was told to stop');
    assert.deepEqual(started, [0, 1], 'the dependent stage never started');
  });

  it('rejects with the cancel reason when the build is cancelled', async () => {
    const controller = new AbortController();
    const run = runStagesInOrder([stage(0), stage(1, { base: 0 })], 2, controller.signal, async (_s, signal) => {
      await new Promise<void>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
    });
    controller.abort(new Error('cancelled by the test'));
    await assert.rejects(run, /cancelled by the test/);
  });
});
