/**
 * A planner SIGKILLed while a build's RUN sleeps in its VM, then started again on the same records
 * (NATS: KV buckets and event history), for real under QEMU, one boot: the build ends FAILED with the
 * reason, its events go on from where they were, and nothing it had is left on the host: no VM, no
 * qemu process, no VM netns, no CNI lease, no intermediate stage image.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInSandbox } from './support/in-sandbox.ts';
import type { HostFacts } from './support/planner-restart-scenario.ts';

describe('planner restart', () => {
  it('fails the build a killed planner was running and removes what it left on the vmm', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const { code, stdout, stderr } = await runInSandbox('test/support/planner-restart-scenario.ts');
    assert.equal(code, 0, `scenario failed: ${stderr.slice(-4000)}`);
    const r = JSON.parse(stdout) as {
      buildId: string;
      stateBeforeKill: string;
      beforeRestart: HostFacts;
      build: { state: string; error?: { code: string; message: string }; lastSequence: string };
      events: { sequence: number; kind: string; state?: string; message?: string }[];
      afterCleanUp: HostFacts;
    };
    assert.equal(r.stateBeforeKill, 'BUILD_STATE_RUNNING');
    assert.deepEqual(r.beforeRestart.vms.map((vm) => vm.split(' ')[1]), [r.buildId], 'the killed build left its VM');
    assert.equal(r.beforeRestart.intermediateImages.length, 1, 'and its first stage image');
    assert.equal(r.beforeRestart.netns.length, 1);
    assert.equal(r.beforeRestart.leases.length, 1);
    assert.equal(r.beforeRestart.qemu, 1);

    assert.equal(r.build.state, 'BUILD_STATE_FAILED');
    assert.equal(r.build.error?.code, 'ABORTED');
    assert.equal(r.build.error?.message, 'the planner restarted while the build was running');
    const last = r.events.at(-1)!;
    assert.deepEqual([last.kind, last.state, last.message], ['state', 'BUILD_STATE_FAILED', r.build.error.message], 'WatchBuild ends with the failure');
    assert.equal(String(last.sequence), r.build.lastSequence);
    assert.deepEqual(
      r.events.map((e) => e.sequence),
      r.events.map((_, i) => i + 1),
      'the history from before the kill replays, and the failure is numbered on without a gap',
    );
    assert.ok(r.events.some((e) => e.state === 'BUILD_STATE_RUNNING'));

    assert.deepEqual(r.afterCleanUp, { vms: [], intermediateImages: [], netns: [], leases: [], qemu: 0 }, 'nothing of the build is left');
  });
});
