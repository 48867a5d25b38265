import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlannedStage } from '../src/domain/plan.ts';
import { runStagesInOrder } from '../src/execution/stage-scheduler.ts';

const stage = (index: number, dependsOn: number[] = []): PlannedStage => ({ index, dependsOn }) as unknown as PlannedStage;
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runStagesInOrder', () => {
  it('starts independent stages together, up to the limit, and a stage only after what it needs', async () => {
    const log: string[] = [];
    let running = 0;
    let peak = 0;
    await runStagesInOrder([stage(0), stage(1), stage(2), stage(3, [0, 1, 2])], 2, new AbortController().signal, async (s) => {
      running += 1;
      peak = Math.max(peak, running);
      log.push(`start ${s.index}`);
      await tick(20);
      log.push(`end ${s.index}`);
      running -= 1;
    });
    assert.equal(peak, 2, 'never more than the limit at once');
    assert.deepEqual(log.slice(0, 2), ['start 0', 'start 1']);
    assert.ok(log.indexOf('start 3') > Math.max(log.indexOf('end 0'), log.indexOf('end 1'), log.indexOf('end 2')), log.join(', '));
  });

  it('runs one at a time with a limit of 1, in Dockerfile order', async () => {
    const log: number[] = [];
    await runStagesInOrder([stage(0), stage(1), stage(2, [0])], 1, new AbortController().signal, async (s) => {
      log.push(s.index);
      await tick(5);
    });
    assert.deepEqual(log, [0, 1, 2]);
  });

  it('stops the other stages on the first failure and reports that one', async () => {
    let siblingAborted = false;
    const started: number[] = [];
    await assert.rejects(
      runStagesInOrder([stage(0), stage(1), stage(2, [0, 1])], 2, new AbortController().signal, async (s, signal) => {
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
    const run = runStagesInOrder([stage(0), stage(1, [0])], 2, controller.signal, async (_s, signal) => {
      await new Promise<void>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
    });
    controller.abort(new Error('cancelled by the test'));
    await assert.rejects(run, /cancelled by the test/);
  });
});
