/**
 * A CreateVm that fails after its network step leaves nothing behind, even when the CNI plugins fail
 * DEL as well as ADD (over the real stores and ext4 tools, with a network and netns the test controls).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { E2fsprogsExt4Disk } from '../src/adapters/ext4/ext4-disk.ts';
import { FsImageStore } from '../src/adapters/fs/image-store.ts';
import { FsKernelStore } from '../src/adapters/fs/kernel-store.ts';
import { FsVmRecordStore } from '../src/adapters/fs/vm-record-store.ts';
import { SshKeygenHostKeys } from '../src/adapters/ssh-keygen/host-key.ts';
import { emptyImageMetadata } from '../src/domain/image.ts';
import { VmEventHub } from '../src/domain/vm-event-hub.ts';
import { VmHost } from '../src/domain/vm-host.ts';
import type { HypervisorDriver, VmProcessRef } from '../src/ports/hypervisor.ts';
import type { VmNetwork } from '../src/ports/vm-network.ts';

const skip = process.getuid?.() !== 0 ? 'needs root (debugfs on the image copy)' : false;

test('a CreateVm whose CNI ADD and DEL both fail removes its netns and VM directory', { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-create-cleanup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  execFileSync('truncate', ['-s', '16M', join(dir, 'tiny.ext4')]);
  execFileSync('mkfs.ext4', ['-q', '-F', join(dir, 'tiny.ext4')]);
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
  const delAttempts: string[] = [];
  const broken: VmNetwork = {
    networkName: 'broken',
    attach: async () => {
      throw new Error('ADD: bridge plugin exploded');
    },
    check: async () => undefined,
    detach: async (vmId) => {
      delAttempts.push(vmId);
      throw new Error('DEL: bridge plugin exploded');
    },
    attachment: async () => undefined,
  };
  const hypervisor: HypervisorDriver = {
    name: 'qemu',
    launch: async (): Promise<VmProcessRef> => {
      throw new Error('not used');
    },
    stop: async () => ({ graceful: true }),
    isAlive: async () => false,
    waitForExit: async () => undefined,
    cleanup: async () => undefined,
  };
  const records = new FsVmRecordStore(join(dir, 'vms'));
  const host = new VmHost({
    host: 'testhost',
    images,
    kernels,
    records,
    disk: new E2fsprogsExt4Disk(),
    hostKeys: new SshKeygenHostKeys(),
    networks: async () => broken,
    netns: {
      ensure: async (name) => (netns.add(name), `/var/run/netns/${name}`),
      remove: async (name) => void netns.delete(name),
    },
    netnsPrefix: 'kindling-test-',
    hypervisor,
    events: new VmEventHub(
      'testhost',
      { publish: async () => undefined },
      { load: async () => 0, save: async () => undefined },
      () => undefined,
    ),
    log: { info() {}, warn() {}, error() {} },
    stopTimeoutMs: 1000,
    defaultNetwork: '',
  });

  await assert.rejects(
    host.createVm({
      vmId: 'vm-broken',
      image: 'tiny:one',
      vcpus: 1,
      memoryMib: 256,
      diskSizeBytes: 0,
      network: 'broken',
      authorizedKeys: [],
      hostname: '',
      extraKernelArgs: '',
      buildId: '',
      labels: {},
    }),
    /ADD: bridge plugin exploded/,
  );
  assert.deepEqual(delAttempts, ['vm-broken'], 'DEL was still tried after the failed ADD');
  assert.deepEqual([...netns], [], 'the netns is removed');
  assert.deepEqual(await readdir(join(dir, 'vms')).catch(() => []), [], 'no VM directory is left');
});
