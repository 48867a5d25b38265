import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootGate } from '../src/execution/boot-gate.ts';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
const never = new AbortController().signal;

/** A boot that runs until `finish` is called, recording when it started. */
function controlledBoot(log: string[], name: string): { boot: () => Promise<string>; finish: () => void } {
  let finish = () => {};
  const boot = () => {
    log.push(`boot ${name}`);
    return new Promise<string>((resolve) => (finish = () => resolve(name)));
  };
  return { boot, finish: () => finish() };
}

describe('BootGate', () => {
  it('boots one VM at a time by default, the next once the first is up', async () => {
    const gate = new BootGate(1);
    const log: string[] = [];
    const a = controlledBoot(log, 'a');
    const b = controlledBoot(log, 'b');
    const first = gate.run(0, 1, never, a.boot);
    const second = gate.run(1, 1, never, b.boot);
    await tick();
    assert.deepEqual(log, ['boot a']);
    a.finish();
    assert.equal(await first, 'a');
    await tick();
    assert.deepEqual(log, ['boot a', 'boot b']);
    b.finish();
    assert.equal(await second, 'b');
  });

  it('keeps a free slot for a more urgent expected stage that has not asked yet', async () => {
    const gate = new BootGate(1);
    const log: string[] = [];
    const tools = controlledBoot(log, 'tools');
    const main = controlledBoot(log, 'main');
    gate.expect(0, 1); // one step, then done
    gate.expect(1, 4); // four steps before it reads stage 0
    const toolsBooted = gate.run(0, 1, never, tools.boot);
    await tick();
    assert.deepEqual(log, [], 'the less urgent stage asked first but waits');
    const mainBooted = gate.run(1, 4, never, main.boot);
    await tick();
    assert.deepEqual(log, ['boot main']);
    main.finish();
    await mainBooted;
    await tick();
    assert.deepEqual(log, ['boot main', 'boot tools']);
    tools.finish();
    await toolsBooted;
  });

  it('gives the slot on when the expected stage withdraws (it needs no VM, or waits for another stage)', async () => {
    const gate = new BootGate(1);
    const log: string[] = [];
    const a = controlledBoot(log, 'a');
    gate.expect(0, 1);
    gate.expect(1, 9);
    const booted = gate.run(0, 1, never, a.boot);
    await tick();
    assert.deepEqual(log, []);
    gate.withdraw(1);
    await tick();
    assert.deepEqual(log, ['boot a']);
    a.finish();
    await booted;
  });

  it('frees the slot when a boot fails, and a stage cancelled while it waits leaves the queue', async () => {
    const gate = new BootGate(1);
    const log: string[] = [];
    const b = controlledBoot(log, 'b');
    let failBoot = (_error: Error) => {};
    const failing = gate.run(0, 1, never, () => new Promise<never>((_resolve, reject) => (failBoot = reject)));
    const cancel = new AbortController();
    const cancelled = gate.run(1, 5, cancel.signal, () => Promise.resolve('never booted'));
    const third = gate.run(2, 1, never, b.boot);
    await tick();
    cancel.abort(new Error('build cancelled'));
    await assert.rejects(cancelled, /build cancelled/);
    failBoot(new Error('CreateVm failed'));
    await assert.rejects(failing, /CreateVm failed/);
    await tick();
    assert.deepEqual(log, ['boot b'], 'the failed boot gave its slot to the next stage');
    b.finish();
    await third;
  });

  it('boots up to the limit at once', async () => {
    const gate = new BootGate(2);
    const log: string[] = [];
    const boots = ['a', 'b', 'c'].map((name) => controlledBoot(log, name));
    const runs = boots.map((b, i) => gate.run(i, 1, never, b.boot));
    await tick();
    assert.deepEqual(log, ['boot a', 'boot b']);
    boots[1]!.finish();
    await tick();
    assert.deepEqual(log, ['boot a', 'boot b', 'boot c']);
    boots[0]!.finish();
    boots[2]!.finish();
    await Promise.all(runs);
  });
});
