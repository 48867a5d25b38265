/**
 * Which leftovers the restarted planner removes, against a vmm kept in memory (the real vmm is in
 * test/planner-restart.test.ts): VMs of finished builds, intermediate images unless the build kept its
 * stages and ended by itself, never anything of a build still running; a vmm that fails is retried.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { Image, Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createLogger, InProcessEventBus, UnavailableError } from '@kindling/runtime';
import { BucketBuildRecords } from '../src/records/build-records.ts';
import { recoverBuilds } from '../src/records/build-recovery.ts';

const log = createLogger('test', 'silent');

function record(id: string, state: BuildState, keepStages = false): Build {
  return {
    id,
    state,
    request: { source: undefined, tag: 'a:1', buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages },
    imageRef: '',
    created: new Date(),
    vmId: '',
    vmmHost: 'local',
    stepsDone: 0,
    stepsTotal: 1,
    lastSequence: '2',
    traceId: '',
  };
}

/** A vmm host in memory; unavailableFor: how many listVms calls fail before it answers. */
class MemoryVmHost {
  vms: string[] = [];
  images: string[] = [];
  listCalls = 0;
  constructor(private unavailableFor = 0) {}
  async listVms(): Promise<Vm[]> {
    this.listCalls += 1;
    if (this.unavailableFor-- > 0) throw new UnavailableError('vmm: connection refused');
    return this.vms.map((entry) => {
      const [id, build] = entry.split(' ');
      return { id, spec: { labels: { 'kindling.build': build } } } as unknown as Vm;
    });
  }
  async deleteVm(vmId: string): Promise<void> {
    this.vms = this.vms.filter((entry) => !entry.startsWith(`${vmId} `));
  }
  async listImages(): Promise<Image[]> {
    return this.images.map((ref) => ({ name: ref.split(':')[0], tag: ref.split(':')[1] }) as Image);
  }
  async deleteImage(ref: string): Promise<void> {
    this.images = this.images.filter((image) => image !== ref);
  }
}

describe('leftover sweep after a restart', () => {
  it('removes what finished and interrupted builds left, keeps kept stages and a running build\'s things', async () => {
    const records = new BucketBuildRecords();
    await records.put(record('interrupted', BuildState.BUILD_STATE_RUNNING, true));
    await records.put(record('failed', BuildState.BUILD_STATE_FAILED));
    await records.put(record('kept', BuildState.BUILD_STATE_SUCCEEDED, true));
    const host = new MemoryVmHost();
    host.vms = ['b-interrupted-1 interrupted', 'b-failed-0 failed', 'other-vm '];
    host.images = ['kindling-intermediate/interrupted:stage-0', 'kindling-intermediate/failed:stage-0', 'kindling-intermediate/kept:stage-0', 'app:1'];
    const closed: string[] = [];
    const recovery = await recoverBuilds({ records, bus: new InProcessEventBus(), vmHost: host, guest: { closeSession: async (id) => void closed.push(id) }, log });
    // a build started after recovery is running: the sweep must not see it as a leftover
    await records.put(record('running-now', BuildState.BUILD_STATE_BOOTING));
    host.vms.push('b-running-now-0 running-now');
    host.images.push('kindling-intermediate/running-now:stage-0');
    await recovery.swept;
    assert.deepEqual(recovery.interrupted.map((b) => b.id), ['interrupted']);
    assert.equal((await records.get('interrupted'))?.error?.message, 'the planner restarted while the build was running');
    assert.deepEqual(host.vms, ['other-vm ', 'b-running-now-0 running-now']);
    assert.deepEqual(host.images, ['kindling-intermediate/kept:stage-0', 'app:1', 'kindling-intermediate/running-now:stage-0']);
    assert.deepEqual(closed.sort(), ['b-failed-0', 'b-interrupted-1']);
  });

  it('retries while the vmm is unavailable, and stops retrying when asked', async () => {
    const records = new BucketBuildRecords();
    await records.put(record('interrupted', BuildState.BUILD_STATE_PLANNING));
    const flaky = new MemoryVmHost(2);
    flaky.vms = ['b-interrupted-0 interrupted'];
    const recovery = await recoverBuilds({ records, bus: new InProcessEventBus(), vmHost: flaky, guest: { closeSession: async () => {} }, log }, { firstRetryMs: 1, maxRetryMs: 2 });
    await recovery.swept;
    assert.equal(flaky.listCalls, 3, 'two failures, then a pass');
    assert.deepEqual(flaky.vms, []);

    const down = new MemoryVmHost(Number.POSITIVE_INFINITY);
    const stopped = await recoverBuilds({ records, bus: new InProcessEventBus(), vmHost: down, guest: { closeSession: async () => {} }, log }, { firstRetryMs: 1, maxRetryMs: 5 });
    while (down.listCalls < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    await stopped.stop();
    const calls = down.listCalls;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(down.listCalls, calls, 'no pass after stop');
  });
});
