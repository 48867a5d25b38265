/**
 * The fault suite in its reduced form (run by `npm test` and `.ci/run`; `npm run test:faults` runs
 * it alone): builds interrupted by one fault each, for real under QEMU, three boots. Each build ends
 * in a clear state naming the step and the reason, and the shared leak auditor finds nothing left:
 * no VM, netns, veth/tap, CNI lease, qemu process, staging directory or temp file. The planner
 * killed mid-build is planner-restart.test.ts, with the same checks.
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

    // A cancel that reaches the build while it commits either stops it (no image) or comes too late
    // (the image is whole): never a half-written image, never an image of a cancelled build.
    const cancelAtCommit = byFault.get('cancel-at-commit')!;
    assert.ok(['BUILD_STATE_CANCELLED', 'BUILD_STATE_SUCCEEDED'].includes(cancelAtCommit.state), cancelAtCommit.state);
    assert.equal(cancelAtCommit.imageExists, cancelAtCommit.state === 'BUILD_STATE_SUCCEEDED');

    assert.deepEqual(final, noLeaks(), 'nothing left after all the faults');
  });
});
