/**
 * The fault suite (run by `npm test` and `.ci/run`; `npm run test:faults` runs it alone): builds
 * interrupted by one fault each, for real under QEMU, seven boots — the build VM killed, the guest's
 * sshd killed, an ADD answering 404 and one that never answers, the vmm and the provisioner each
 * SIGKILLed and restarted, nats-server stopped and restarted, CancelBuild racing the commit. Each build
 * ends in a clear state naming the step and the reason, or recovers where it can (the vmm re-adopts
 * its VMs; events wait while NATS is away and WatchBuild misses none), and the shared leak auditor
 * finds nothing left: no VM, netns, veth/tap, CNI lease, qemu process, staging directory or temp
 * file. The planner killed mid-build is planner-restart.test.ts, with the same checks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInSandbox } from './support/in-sandbox.ts';
import type { FaultOutcome } from './support/faults-scenario.ts';
import { noLeaks, type HostLeaks } from './support/leak-audit.ts';

describe('builds under faults', () => {
  it('end FAILED (or as the race decides) with the step and reason, leaving nothing on the host', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const { code, stdout, stderr } = await runInSandbox('test/support/faults-scenario.ts');
    assert.equal(code, 0, `scenario failed: ${stderr.slice(-4000)}`);
    const { outcomes, final } = JSON.parse(stdout) as { outcomes: FaultOutcome[]; final: HostLeaks };
    const byFault = new Map(outcomes.map((o) => [o.fault, o]));
    for (const outcome of outcomes) {
      assert.ok(outcome.injected, `${outcome.fault}: the fault was injected`);
      assert.deepEqual(outcome.leaks, noLeaks(), `${outcome.fault}: nothing left on the host`);
    }

    const vmKilled = byFault.get('vm-killed')!;
    assert.equal(vmKilled.state, 'BUILD_STATE_FAILED');
    assert.deepEqual([vmKilled.error?.stepIndex, vmKilled.error?.line], [1, 3], 'the RUN that was running is the failed step');
    assert.equal(vmKilled.error?.code, 'UNAVAILABLE');
    assert.match(vmKilled.error?.message ?? '', /SSH connection .* dropped while a command was running/);
    assert.equal(vmKilled.imageExists, false, 'no image of a failed build');

    const sshdKilled = byFault.get('guest-sshd-killed')!;
    assert.equal(sshdKilled.state, 'BUILD_STATE_FAILED');
    assert.deepEqual([sshdKilled.error?.stepIndex, sshdKilled.error?.line], [0, 2]);
    assert.match(sshdKilled.error?.message ?? '', /dropped while a command was running/);
    assert.equal(sshdKilled.imageExists, false);

    const notFound = byFault.get('context-404')!;
    assert.equal(notFound.state, 'BUILD_STATE_FAILED');
    assert.equal(notFound.error?.code, 'NOT_FOUND');
    assert.deepEqual([notFound.error?.stepIndex, notFound.error?.line], [0, 2], 'the ADD is the failed step');
    assert.match(notFound.error?.message ?? '', /GET http:\/\/127\.0\.0\.1:\d+\/missing\.txt returned 404/);

    const hang = byFault.get('context-hang')!;
    assert.equal(hang.state, 'BUILD_STATE_FAILED');
    assert.equal(hang.error?.code, 'DEADLINE_EXCEEDED', 'a server that never answers is a timeout');
    assert.deepEqual([hang.error?.stepIndex, hang.error?.line], [1, 3], 'the ADD after the RUN is the failed step');
    assert.match(hang.error?.message ?? '', /GET http:\/\/127\.0\.0\.1:\d+\/hang\.txt timed out: no response headers within 3 s/);

    // the vmm re-adopts the running VM when it is back, and the planner's calls wait for it
    const vmmRestarted = byFault.get('vmm-restarted')!;
    assert.equal(vmmRestarted.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(vmmRestarted.error));
    assert.equal(vmmRestarted.imageExists, true);

    // the provisioner holds the SSH session: the RUN in it is lost, and the build says so
    const provisionerRestarted = byFault.get('provisioner-restarted')!;
    assert.equal(provisionerRestarted.state, 'BUILD_STATE_FAILED');
    assert.equal(provisionerRestarted.error?.code, 'UNAVAILABLE');
    assert.deepEqual([provisionerRestarted.error?.stepIndex, provisionerRestarted.error?.line], [0, 2]);
    assert.match(provisionerRestarted.error?.message ?? '', /the provisioner went away or cannot be reached/);
    assert.equal(provisionerRestarted.imageExists, false);

    // events published while NATS is away wait and go out in order: WatchBuild, followed through the
    // outage, and a replay afterwards both see every event once
    const natsRestarted = byFault.get('nats-restarted')!;
    assert.equal(natsRestarted.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(natsRestarted.error));
    assert.equal(natsRestarted.imageExists, true);
    assert.ok(natsRestarted.watchedWithoutGap, 'WatchBuild delivered sequences 1..N without a gap');
    assert.ok(natsRestarted.replayMatches, 'the replay from 0 gives the same events');

    // A cancel that reaches the build while it commits either stops it (no image) or comes too late
    // (the image is whole): never a half-written image, never an image of a cancelled build.
    const cancelAtCommit = byFault.get('cancel-at-commit')!;
    assert.ok(['BUILD_STATE_CANCELLED', 'BUILD_STATE_SUCCEEDED'].includes(cancelAtCommit.state), cancelAtCommit.state);
    assert.equal(cancelAtCommit.imageExists, cancelAtCommit.state === 'BUILD_STATE_SUCCEEDED');

    assert.deepEqual(final, noLeaks(), 'nothing left after all the faults');
  });
});
