/**
 * CreateVm on a real CNI network (bridge + host-local + firewall + tap in a test-owned host netns)
 * without booting: the network resolves with tc-redirect-tap's stand-in, DeleteVm releases
 * everything, and a CreateVm whose deadline passes mid-way leaves no netns, lease or VM directory.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import type { CreateVmResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { CniLab, cniLabUnavailable } from './support/cni-lab.ts';
import { call, makeTempDir, removeDir, startTestVmm, type VmmUnderTest } from './support/vmm-harness.ts';

const skip = cniLabUnavailable() ?? false;

describe('vmm CreateVm on a CNI network, without a boot', { skip }, () => {
  let dir: string;
  let lab: CniLab;
  let vmm: VmmUnderTest;
  const vmNetns = () =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith('kindling-test-cnivm-'));
  const leases = async () =>
    (await readdir(join(lab.dataDir, 'lab'), { recursive: true }).catch(() => [] as string[])).filter((f) =>
      /^\d+\.\d+\.\d+\.\d+$/.test(String(f).split('/').pop() ?? ''),
    );
  const spec = (vmId: string) => ({
    vmId,
    start: false,
    spec: {
      image: 'test/tiny:one',
      kernelId: '',
      vcpus: 1,
      memoryMib: 256,
      diskSizeBytes: String(256 << 20),
      network: 'lab',
      authorizedKeys: [],
      hostname: '',
      extraKernelArgs: '',
      labels: {},
      buildId: '',
      transferDiskBytes: '0',
    },
  });

  before(async () => {
    dir = await makeTempDir('vmm-cni-create');
    lab = await CniLab.create();
    await lab.addNetwork({ name: 'lab', cniVersion: '1.0.0', subnetOctet: 93, tapType: 'tc-redirect-tap' });
    await mkdir(join(dir, 'tree/etc'), { recursive: true });
    // an init, so CreateVm takes the image as bootable (it refuses one without)
    await mkdir(join(dir, 'tree/sbin'), { recursive: true });
    await writeFile(join(dir, 'tree/sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
    execFileSync('truncate', ['-s', '64M', join(dir, 'tiny.ext4')]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(dir, 'tree'), join(dir, 'tiny.ext4')]);
    vmm = await startTestVmm({
      stateDir: join(dir, 'state'),
      cniConfDir: lab.confDir,
      cniCacheDir: lab.cacheDir,
      cniHostNetns: lab.hostNetnsPath,
    });
    await vmm.running.host.deps.kernels.put('k', '0.0.0-test', { bzImage: join(dir, 'tiny.ext4') });
    await call(vmm.client, 'importImage', {
      rootfsPath: join(dir, 'tiny.ext4'),
      image: 'test/tiny:one',
      kernelId: 'k',
      overwrite: false,
    });
  });
  after(async () => {
    await vmm?.stop();
    for (const ns of vmNetns()) execFileSync('ip', ['netns', 'delete', ns]);
    await lab?.cleanup();
    if (dir) await removeDir(dir);
  });

  it('attaches through the tc-redirect-tap stand-in, checks, and DeleteVm releases netns and lease', async () => {
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', spec('cnivm-one'));
    assert.match(vm?.network?.guestIp ?? '', /^10\.231\.93\.\d+$/);
    assert.deepEqual(vmNetns(), ['kindling-test-cnivm-one']);
    assert.equal((await leases()).length, 1);
    const got = await call<object, CreateVmResponse>(vmm.client, 'getVm', { vmId: 'cnivm-one' });
    assert.equal(got.vm?.stateReason, '', 'CNI CHECK passes');
    await call(vmm.client, 'deleteVm', { vmId: 'cnivm-one' });
    assert.deepEqual(vmNetns(), []);
    assert.deepEqual(await leases(), []);
    assert.deepEqual(await readdir(join(dir, 'state/vms')), []);
  });

  it('a CreateVm whose deadline passes mid-way leaves no VM, netns or lease', async () => {
    // Deadlines from very short to long enough: whichever step each one cuts, nothing may stay.
    for (const [index, ms] of [20, 60, 120, 200, 350].entries()) {
      const id = `cnivm-late-${index}`;
      const outcome = await call(vmm.client, 'createVm', spec(id), ms).then(
        () => 'created',
        (e: ServiceError) => e.code,
      );
      // The server may still be undoing the cut-short call: wait for its work, then look.
      const deadline = Date.now() + 10_000;
      let left = false;
      while (outcome !== 'created' && Date.now() < deadline) {
        left = await call(vmm.client, 'getVm', { vmId: id }).then(
          () => true,
          (e: ServiceError) => e.code !== Status.NOT_FOUND,
        );
        // The cut-short call may have made its directory but no record or netns yet: wait for all three to go.
        if (!left && vmNetns().length === 0 && (await readdir(join(dir, 'state/vms'))).length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (outcome === 'created') {
        await call(vmm.client, 'deleteVm', { vmId: id });
        continue;
      }
      assert.equal(outcome, Status.DEADLINE_EXCEEDED);
      assert.deepEqual(vmNetns(), [], `${ms} ms: no netns (VM record ${left ? 'still there' : 'gone'})`);
      assert.deepEqual(await leases(), [], `${ms} ms: no lease`);
      assert.deepEqual(await readdir(join(dir, 'state/vms')), [], `${ms} ms: no VM directory`);
    }
  });
});
