/**
 * Multi-stage builds and the step cache, for real: three stages in microVMs under QEMU (two of them
 * at once), COPY --from between them, then an unchanged rebuild (no VM may boot) and a rebuild with
 * the last COPY's file changed (only that step and after rerun, from the snapshot before it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInSandbox } from './support/in-sandbox.ts';

interface Outcome {
  state: string;
  error?: unknown;
  ms: number;
  steps: { stage: number; step: number; state: string; instruction: string }[];
  order: string[];
  boots: number;
}

interface FileFacts {
  mode: string;
  uid: number;
  gid: number;
  link?: string;
}

describe('multi-stage builds and the step cache', () => {
  it('builds stages concurrently, copies between them keeping owners and modes, then reuses the cache', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (VMs, netns, CNI)');
    const { code, stdout, stderr } = await runInSandbox('test/support/multistage-scenario.ts');
    assert.equal(code, 0, `scenario failed: ${stderr.slice(-4000)}`);
    const r = JSON.parse(stdout) as {
      cold: Outcome;
      unchanged: Outcome;
      changed: Outcome;
      files: { app: FileFacts; appLink: FileFacts; owned: FileFacts; readme: FileFacts; appContent: string; greeting: string; passwdApp: number[]; fsck: number | null; blob: FileFacts & { same: boolean }; filesFromTransferDisk: number };
      greeting3: string;
      fsck3: number | null;
      mounted: { fromMount: string; mountPointLeft: boolean };
      scratch: Outcome;
      scratchFiles: { app: FileFacts; greeting: string; readme: string; pinned: string; note: FileFacts; init: boolean };
      scratchBoot: { code: string; message: string };
      entrypoint: string[];
      cacheEntries: number;
      pruned: number;
      cacheAfter: number;
      intermediateImages: string[];
      vmsLeft: string[];
    };
    t.diagnostic(`cold ${r.cold.ms} ms, unchanged ${r.unchanged.ms} ms, changed ${r.changed.ms} ms`);

    assert.equal(r.cold.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(r.cold.error));
    assert.equal(r.cold.boots, 3, 'one VM per stage');
    const overlap = r.cold.order.indexOf('start:1') < r.cold.order.indexOf('end:0') || r.cold.order.indexOf('start:0') < r.cold.order.indexOf('end:1');
    assert.ok(overlap, `the independent stages ran at once: ${r.cold.order.join(' ')}`);
    assert.deepEqual(r.files.app, { mode: '0750', uid: 1234, gid: 2345 });
    assert.equal(r.files.appLink.link, 'app', 'the symlink is copied as a symlink');
    assert.equal(r.files.passwdApp.length, 2);
    assert.deepEqual([r.files.owned.uid, r.files.owned.gid], r.files.passwdApp, '--chown=app:app wins over the source owner');
    assert.equal(r.files.owned.mode, '0750');
    assert.deepEqual(r.files.readme, { mode: '0640', uid: 42, gid: 43 });
    assert.match(r.files.appContent, /built-by-builder/);
    assert.equal(r.files.greeting.trim(), 'hello one');
    assert.deepEqual(r.files.blob, { mode: '0604', uid: 0, gid: 0, same: true }, 'the 3 MiB file arrived whole, with its --chmod');
    assert.equal(r.files.filesFromTransferDisk, 1, 'it came through the transfer disk, not SFTP');
    assert.deepEqual(r.entrypoint, ['/usr/local/bin/app']);
    assert.equal(r.mounted.fromMount.trim(), 'read me', 'RUN --mount=type=bind,from=docs read the stage');
    assert.equal(r.mounted.mountPointLeft, false, 'the mount point the bind mount created is gone');

    assert.equal(r.unchanged.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(r.unchanged.error));
    assert.equal(r.unchanged.boots, 0, 'an unchanged rebuild boots no VM');
    assert.equal(r.unchanged.steps.length, r.cold.steps.length);
    assert.ok(r.unchanged.steps.every((s) => s.state === 'STEP_STATE_CACHED'), JSON.stringify(r.unchanged.steps));

    assert.equal(r.changed.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(r.changed.error));
    assert.equal(r.changed.boots, 1, 'only the final stage boots');
    const rerun = r.changed.steps.filter((s) => s.state !== 'STEP_STATE_CACHED');
    assert.deepEqual(
      rerun.map((s) => s.instruction.split(' ')[0]),
      ['COPY', 'ENTRYPOINT'],
      `only the changed COPY and what follows it rerun: ${JSON.stringify(rerun)}`,
    );
    assert.equal(r.greeting3.trim(), 'hello two');
    // each build's last VM is frozen, then killed rather than powered off: its committed disk must be clean
    assert.equal(r.files.fsck, 0, 'e2fsck -fn finds the committed image of the cold build consistent');
    assert.equal(r.fsck3, 0, 'e2fsck -fn finds the image committed after a cached prefix consistent');

    assert.equal(r.scratch.state, 'BUILD_STATE_SUCCEEDED', JSON.stringify(r.scratch.error));
    assert.equal(r.scratch.boots, 0, 'FROM scratch is assembled without a VM');
    assert.deepEqual(r.scratchFiles.app, { mode: '0750', uid: 1234, gid: 2345 }, 'COPY --from=<image> keeps owners and modes');
    assert.equal(r.scratchFiles.greeting.trim(), 'hello one', 'from the first build');
    assert.equal(r.scratchFiles.readme, 'from git\n', 'ADD of a git repository');
    assert.equal(r.scratchFiles.pinned, 'from git\n', 'ADD --checksum=<commit> of a git repository');
    assert.deepEqual([r.scratchFiles.note.uid, r.scratchFiles.note.gid], [7, 8]);
    assert.equal(r.scratchFiles.init, false);
    assert.equal(r.scratchBoot.code, 'FAILED_PRECONDITION', `booting an image without an init is FAILED_PRECONDITION: ${r.scratchBoot.message}`);
    assert.match(r.scratchBoot.message, /e2e\/scratch:1/);

    assert.ok(r.cacheEntries > 0, 'the cache lists its snapshots');
    assert.equal(r.pruned, r.cacheEntries, 'PruneCache all removes every entry');
    assert.equal(r.cacheAfter, 0);
    assert.deepEqual(r.intermediateImages, [], 'intermediate stage images are removed');
    assert.deepEqual(r.vmsLeft, [], 'no build VM is left');
  });
});
