/**
 * A CreateVm that fails or is cancelled after its network step leaves nothing behind: not when the CNI
 * plugins fail DEL as well as ADD, and not when the caller gives up during the last step (over the
 * real stores and ext4 tools, with a network and netns the test controls). A StartVm whose launch
 * fails has the driver stop any hypervisor the record does not know of.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { E2fsprogsExt4Disk } from '../src/adapters/ext4/ext4-disk.ts';
import { FsImageStore } from '../src/adapters/fs/image-store.ts';
import { FsKernelStore } from '../src/adapters/fs/kernel-store.ts';
import { FsVmRecordStore } from '../src/adapters/fs/vm-record-store.ts';
import { SshKeygenHostKeys } from '../src/adapters/ssh-keygen/host-key.ts';
import { emptyImageMetadata } from '../src/domain/image.ts';
import { VmEventHub } from '../src/domain/vm-event-hub.ts';
import { VmHost } from '../src/domain/vm-host.ts';
import type { VmSpec } from '../src/domain/vm.ts';
import type { HostKeyGenerator } from '../src/ports/disk.ts';
import type { HypervisorDriver, VmProcessRef } from '../src/ports/hypervisor.ts';
import type { CniAttachment, VmNetwork } from '../src/ports/vm-network.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (debugfs on the image copy)' : false;

const vmSpec = (vmId: string): VmSpec => ({
  vmId,
  image: 'tiny:one',
  vcpus: 1,
  memoryMib: 256,
  diskSizeBytes: 0,
  network: 'lab',
  authorizedKeys: [],
  hostname: '',
  extraKernelArgs: '',
  buildId: '',
  labels: {},
});

const unusedHypervisor: HypervisorDriver = {
  name: 'qemu',
  launch: async (): Promise<VmProcessRef> => {
    throw new Error('not used');
  },
  stop: async () => ({ graceful: true }),
  isAlive: async () => false,
  waitForExit: async () => undefined,
  cleanup: async () => undefined,
};

/** A hypervisor whose launch the caller gives up on: qemu daemonized, then the launch was cut short. */
const launchGivenUpOn = (controller: AbortController, reason: string): HypervisorDriver => ({
  ...unusedHypervisor,
  launch: async () => {
    controller.abort(new Error(reason));
    throw new Error('qemu could not start: killed');
  },
});

const noNetwork: VmNetwork = {
  networkName: 'lab',
  verify: async () => undefined,
  attach: async () => {
    throw new Error('not used');
  },
  check: async () => undefined,
  detach: async () => undefined,
  attachment: async () => undefined,
};

/** A VmHost over real stores in a temp dir, with the network, netns and host keys the test gives. */
async function hostRig(
  t: TestContext,
  network: VmNetwork,
  hostKeys: HostKeyGenerator = new SshKeygenHostKeys(),
  hypervisor: HypervisorDriver = unusedHypervisor,
  publishEvent: () => void = () => undefined,
) {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-create-cleanup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // an init, so CreateVm takes the image as bootable (it refuses one without)
  await mkdir(join(dir, 'tree/sbin'), { recursive: true });
  await writeFile(join(dir, 'tree/sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
  execFileSync('truncate', ['-s', '16M', join(dir, 'tiny.ext4')]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(dir, 'tree'), join(dir, 'tiny.ext4')]);
  await writeFile(join(dir, 'vmlinuz'), 'not a kernel: nothing boots here');
  const images = new FsImageStore(join(dir, 'images'));
  await images.put({ name: 'tiny', tag: 'one' }, async (staging) => {
    await copyFile(join(dir, 'tiny.ext4'), staging);
    return {
      name: 'tiny',
      tag: 'one',
      digest: 'test',
      sizeBytes: 16 << 20,
      created: new Date().toISOString(),
      parent: '',
      metadata: emptyImageMetadata(),
      defaultKernelId: 'k',
      base: true,
    };
  });
  const kernels = new FsKernelStore(join(dir, 'kernels'));
  await kernels.put('k', '0.0.0-test', { bzImage: join(dir, 'vmlinuz') });
  const netns = new Set<string>();
  const host = new VmHost({
    host: 'testhost',
    images,
    kernels,
    records: new FsVmRecordStore(join(dir, 'vms')),
    disk: new E2fsprogsExt4Disk(),
    hostKeys,
    networks: async () => network,
    netns: {
      ensure: async (name) => (netns.add(name), `/var/run/netns/${name}`),
      remove: async (name) => void netns.delete(name),
    },
    netnsPrefix: 'kindling-test-',
    hypervisor,
    events: new VmEventHub(
      'testhost',
      { publish: async () => publishEvent() },
      { load: async () => 0, save: async () => undefined },
      () => undefined,
    ),
    log: { info() {}, warn() {}, error() {} },
    stopTimeoutMs: 1000,
    defaultNetwork: '',
  });
  return { host, netns, vmDirs: () => readdir(join(dir, 'vms')).catch(() => []) };
}

test('a CreateVm whose CNI ADD and DEL both fail removes its netns and VM directory', { skip }, async (t) => {
  const delAttempts: string[] = [];
  const rig = await hostRig(t, {
    networkName: 'lab',
    verify: async () => undefined,
    attach: async () => {
      throw new Error('ADD: bridge plugin exploded');
    },
    check: async () => undefined,
    detach: async (vmId) => {
      delAttempts.push(vmId);
      throw new Error('DEL: bridge plugin exploded');
    },
    attachment: async () => undefined,
  });
  await assert.rejects(rig.host.createVm(vmSpec('vm-broken')), /ADD: bridge plugin exploded/);
  assert.deepEqual(delAttempts, ['vm-broken'], 'DEL was still tried after the failed ADD');
  assert.deepEqual([...rig.netns], [], 'the netns is removed');
  assert.deepEqual(await rig.vmDirs(), [], 'no VM directory is left');
});

test(
  'a CreateVm cancelled during its last step is undone: no VM, netns or CNI attachment',
  { skip },
  async (t) => {
    const controller = new AbortController();
    const attached = new Set<string>();
    const realKeys = new SshKeygenHostKeys();
    const rig = await hostRig(
      t,
      {
        networkName: 'lab',
        verify: async () => undefined,
        attach: async (vmId, netnsPath) => {
          attached.add(vmId);
          return {
            vmId,
            networkName: 'lab',
            ifName: 'eth0',
            netnsPath,
            tapName: 'tap0',
            guestMac: '02:00:00:00:00:05',
            guestCidr: '10.200.0.5/24',
            gateway: '10.200.0.1',
            guestIp: '10.200.0.5',
            prefixLength: 24,
            netmask: '255.255.255.0',
            nameservers: [],
          } satisfies CniAttachment;
        },
        check: async () => undefined,
        detach: async (vmId) => void attached.delete(vmId),
        attachment: async () => undefined,
      },
      {
        // The caller's deadline passes while the last step (host key and guest files) runs.
        generate: async (comment) => {
          controller.abort(new Error('deadline exceeded'));
          return realKeys.generate(comment);
        },
      },
    );
    await assert.rejects(
      rig.host.createVm(vmSpec('vm-late'), { signal: controller.signal }),
      /deadline exceeded/,
    );
    assert.deepEqual(await rig.vmDirs(), [], 'no VM directory is left');
    assert.deepEqual([...rig.netns], [], 'the netns is removed');
    assert.deepEqual([...attached], [], 'the CNI attachment is deleted');
  },
);

test(
  'a StartVm whose launch fails or is cancelled stops whatever the driver left running (its pid file)',
  { skip },
  async (t) => {
    const cleanups: (VmProcessRef | undefined)[] = [];
    const controller = new AbortController();
    const rig = await hostRig(t, noNetwork, new SshKeygenHostKeys(), {
      ...launchGivenUpOn(controller, 'cancelled by the client'),
      cleanup: async (ref) => void cleanups.push(ref),
    });
    await rig.host.createVm({ ...vmSpec('vm-launch'), network: '' });
    await assert.rejects(rig.host.startVm('vm-launch', controller.signal), /cancelled by the client/);
    assert.deepEqual(cleanups, [undefined], 'the driver looked for a hypervisor the record does not know of');
    const record = await rig.host.mustGet('vm-launch');
    assert.equal(record.state, 'FAILED');
    assert.equal(record.process, undefined);
    await rig.host.deleteVm('vm-launch');
  },
);

test(
  'a CreateVm with start that is cancelled while the VM starts removes the VM it created',
  { skip },
  async (t) => {
    const controller = new AbortController();
    const rig = await hostRig(
      t,
      noNetwork,
      new SshKeygenHostKeys(),
      launchGivenUpOn(controller, 'deadline exceeded'),
    );
    await assert.rejects(
      rig.host.createVm({ ...vmSpec('vm-start'), network: '' }, { start: true, signal: controller.signal }),
      /deadline exceeded/,
    );
    assert.deepEqual(await rig.vmDirs(), [], 'no VM directory is left');
  },
);

test(
  'a CreateVm the caller gives up on after its last step (while the VM event goes out) removes the VM',
  { skip },
  async (t) => {
    const controller = new AbortController();
    const rig = await hostRig(t, noNetwork, new SshKeygenHostKeys(), unusedHypervisor, () =>
      controller.abort(new Error('deadline exceeded')),
    );
    await assert.rejects(
      rig.host.createVm({ ...vmSpec('vm-done'), network: '' }, { signal: controller.signal }),
      /deadline exceeded/,
    );
    assert.deepEqual(await rig.vmDirs(), [], 'no VM directory is left');
    await assert.rejects(rig.host.mustGet('vm-done'), /does not exist/);
  },
);

test(
  'CreateVm under Firecracker refuses a kernel without a vmlinux before creating anything',
  { skip },
  async (t) => {
    const rig = await hostRig(t, noNetwork, new SshKeygenHostKeys(), {
      ...unusedHypervisor,
      name: 'firecracker',
    });
    await assert.rejects(
      rig.host.createVm({ ...vmSpec('vm-fc'), network: '' }),
      /kernel k has no uncompressed vmlinux, the only form Firecracker boots/,
    );
    assert.deepEqual(await rig.vmDirs(), [], 'no VM directory');
  },
);
