/**
 * Reconciliation after a vmm restart, branch by branch, over the real stores with a hypervisor
 * whose processes the test controls (the real-qemu paths are in vm-lifecycle.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { E2fsprogsExt4Disk } from '../src/adapters/ext4/ext4-disk.ts';
import { FsImageStore } from '../src/adapters/fs/image-store.ts';
import { FsKernelStore } from '../src/adapters/fs/kernel-store.ts';
import { FsVmRecordStore } from '../src/adapters/fs/vm-record-store.ts';
import { SshKeygenHostKeys } from '../src/adapters/ssh-keygen/host-key.ts';
import { reconcileVms } from '../src/domain/reconcile.ts';
import { VmEventHub } from '../src/domain/vm-event-hub.ts';
import { VmHost } from '../src/domain/vm-host.ts';
import type { VmRecord, VmState } from '../src/domain/vm.ts';
import type { HypervisorDriver, VmProcessRef } from '../src/ports/hypervisor.ts';
import type { VmStateEvent } from '../src/ports/vm-events.ts';

/** Processes that live until the test kills them. */
class ControlledHypervisor implements HypervisorDriver {
  readonly name = 'qemu' as const;
  readonly alive = new Set<number>();
  readonly cleaned: string[] = [];
  async launch(): Promise<VmProcessRef> {
    throw new Error('not used');
  }
  async stop(): Promise<{ graceful: boolean }> {
    return { graceful: true };
  }
  async isAlive(ref: VmProcessRef): Promise<boolean> {
    return this.alive.has(ref.pid);
  }
  async waitForExit(ref: VmProcessRef, signal?: AbortSignal): Promise<void> {
    while (this.alive.has(ref.pid)) await sleep(20, undefined, signal ? { signal } : {});
  }
  async cleanup(_ref: VmProcessRef | undefined, spec: { vmId: string }): Promise<void> {
    this.cleaned.push(spec.vmId);
  }
}

test('reconcile: re-adopt live VMs, STOPPED or FAILED for dead ones, remove half-created ones', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-reconcile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const records = new FsVmRecordStore(join(dir, 'vms'));
  const hypervisor = new ControlledHypervisor();
  const published: VmStateEvent[] = [];
  const silent = { info() {}, warn() {}, error() {} };
  let sequence = 0;
  const events = new VmEventHub(
    'testhost',
    { publish: async (e) => void published.push(e) },
    { load: async () => sequence, save: async (n) => void (sequence = n) },
    () => undefined,
  );
  const host = new VmHost({
    host: 'testhost',
    images: new FsImageStore(join(dir, 'images')),
    kernels: new FsKernelStore(join(dir, 'kernels')),
    records,
    disk: new E2fsprogsExt4Disk(),
    hostKeys: new SshKeygenHostKeys(),
    networks: async () => {
      throw new Error('no networks here');
    },
    netns: { ensure: async () => '', remove: async () => undefined },
    netnsPrefix: 'kindling-test-',
    hypervisor,
    events,
    log: silent,
    stopTimeoutMs: 1000,
    defaultNetwork: '',
  });
  t.after(() => host.detachAll());

  const vm = async (id: string, state: VmState, extra: Partial<VmRecord> & { creating?: boolean } = {}) => {
    await mkdir(records.vmDir(id), { recursive: true });
    const record = {
      id,
      host: 'testhost',
      spec: {
        image: 'x',
        vcpus: 1,
        memoryMib: 128,
        diskSizeBytes: 0,
        network: '',
        authorizedKeys: [],
        hostname: id,
        extraKernelArgs: '',
        buildId: '',
        labels: {},
      },
      state,
      reason: '',
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      imageRef: 'x:latest',
      imageDigest: '',
      kernelId: 'k',
      rootfsPath: join(records.vmDir(id), 'rootfs.ext4'),
      runDir: records.vmDir(id),
      consoleLogPath: join(records.vmDir(id), 'console.log'),
      hostKeyPublic: '',
      stopRequested: false,
      kernelArgs: '',
      driver: 'qemu',
      diskSizeBytes: 0,
      ...extra,
    } as VmRecord;
    await records.save(record);
  };
  const proc = (pid: number): VmProcessRef => ({ driver: 'qemu', pid, details: {} });
  hypervisor.alive.add(101).add(102);
  await vm('live-running', 'RUNNING', { process: proc(101) });
  await vm('live-starting', 'STARTING', { process: proc(102) });
  await vm('dead-running', 'RUNNING', { process: proc(201) });
  await vm('dead-asked', 'RUNNING', { process: proc(202), stopRequested: true });
  await vm('dead-stopping', 'STOPPING', { process: proc(203) });
  await vm('half-created', 'CREATED', { creating: true });
  await vm('stopped', 'STOPPED');

  const report = await reconcileVms(host);
  assert.deepEqual(report.readopted.sort(), ['live-running', 'live-starting']);
  assert.deepEqual(report.failed, ['dead-running']);
  assert.deepEqual(report.stopped.sort(), ['dead-asked', 'dead-stopping']);
  assert.deepEqual(report.removed, ['half-created']);
  const state = async (id: string) => (await records.get(id))?.state;
  assert.equal(await state('live-starting'), 'RUNNING');
  assert.equal(await state('dead-running'), 'FAILED');
  assert.match((await records.get('dead-running'))!.reason, /exited while the vmm was not running/);
  assert.equal((await records.get('dead-running'))!.process, undefined);
  assert.equal(await state('dead-asked'), 'STOPPED');
  assert.equal(await state('stopped'), 'STOPPED');
  assert.ok(!existsSync(records.vmDir('half-created')), 'a half-created VM is removed');
  assert.ok(hypervisor.cleaned.includes('dead-running') && !hypervisor.cleaned.includes('live-running'));

  // A re-adopted VM is watched again: its process dying makes it FAILED.
  hypervisor.alive.delete(101);
  for (let i = 0; i < 100 && (await state('live-running')) !== 'FAILED'; i++) await sleep(20);
  assert.equal(await state('live-running'), 'FAILED');
  const last = published.at(-1)!;
  assert.deepEqual([last.vmId, last.previousState, last.state], ['live-running', 'RUNNING', 'FAILED']);
  assert.ok(
    published.every((e, i) => i === 0 || e.sequence > published[i - 1]!.sequence),
    'sequence increases',
  );
});
