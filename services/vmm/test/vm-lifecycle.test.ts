/**
 * Real VMs through the vmm's gRPC API: the cached Debian base OS booted under qemu on a CNI bridge
 * that lives in a test-owned netns; SSH with the test's key and the pinned host key; graceful stop;
 * commit (the image takes the VM's disk; a restart gets the VM its own again); boot of the committed image and a live
 * commit of it while it runs (guest filesystem frozen); a killed qemu; vmm restarts with a live and a dead VM;
 * the transfer disk (vdb, read-only) read in the guest as the host wrote it.
 * Boots are costly under TCG (tens of seconds each), so the tests share VMs and run in order.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type {
  CommitVmResponse,
  CreateVmResponse,
  GetVmResponse,
  Image,
  ListVmsResponse,
  SnapshotVmResponse,
  StopVmResponse,
  Vm,
  WatchVmsResponse,
  WriteVmTransferHeader,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { generateSshKeyPair } from '@kindling/runtime';
import type { ClientChannel } from 'ssh2';
import { registerBaseOsBuild } from '../src/adapters/fs/base-os-cache.ts';
import { ensureDebianBase, type BaseOsBuild } from '../src/baseos/build.ts';
import { CniLab, cniLabUnavailable } from './support/cni-lab.ts';
import {
  call,
  makeTempDir,
  NetnsForwarder,
  removeDir,
  sshConnect,
  sshExec,
  startTestVmm,
  type VmmUnderTest,
} from './support/vmm-harness.ts';

const NETWORK = 'kindling-test-vms';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const SSH_READY_MS = 300_000;

function why(): string | false {
  const cni = cniLabUnavailable();
  if (cni) return cni;
  for (const tool of ['qemu-system-x86_64', 'debugfs', 'resize2fs', 'ssh-keygen']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool}`;
    }
  }
  if (
    !existsSync('/usr/bin/mmdebstrap') &&
    !existsSync(join(process.env.KINDLING_CACHE_DIR ?? '/var/cache/kindling', 'baseos'))
  ) {
    return 'needs mmdebstrap (to build the Debian base OS) or a cached build';
  }
  return false;
}

const spec = (image: string, publicKey: string, transferDiskBytes = 0) => ({
  image,
  kernelId: '',
  vcpus: 2,
  memoryMib: 1024,
  diskSizeBytes: String(3 * GiB),
  network: NETWORK,
  authorizedKeys: [publicKey],
  hostname: '',
  extraKernelArgs: '',
  labels: {},
  buildId: 'test-build',
  transferDiskBytes: String(transferDiskBytes),
});

describe('VM lifecycle under qemu on a CNI network', { skip: why(), timeout: 30 * 60_000 }, () => {
  let dir: string;
  let lab: CniLab;
  let vmm: VmmUnderTest;
  let build: BaseOsBuild;
  const keys = generateSshKeyPair();
  const events: WatchVmsResponse[] = [];
  const settings = () => ({
    stateDir: join(dir, 'state'),
    cniConfDir: lab.confDir,
    cniCacheDir: lab.cacheDir,
    cniHostNetns: lab.hostNetnsPath,
    stopTimeout: '90s',
  });
  const startVmm = async () => {
    vmm = await startTestVmm(settings());
    const stream = vmm.client.watchVms({ vmId: '' });
    stream.on('data', (event: WatchVmsResponse) => events.push(event));
    stream.on('error', () => undefined);
  };
  const writeTransfer = (header: WriteVmTransferHeader, bytes: Buffer): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const stream = vmm.client.writeVmTransfer((error, response) => (error ? reject(error) : resolve(response)));
      stream.write({ part: { $case: 'header', value: header } });
      stream.write({ part: { $case: 'chunk', value: bytes } });
      stream.end();
    });
  const getVm = async (vmId: string) =>
    (await call<object, GetVmResponse>(vmm.client, 'getVm', { vmId })).vm!;

  /** Runs `command` in the guest over SSH, reached through the test's host netns. */
  async function inGuest(vm: Vm, command: string): Promise<string> {
    const forwarder = await NetnsForwarder.start(lab.hostNetns, join(dir, `ssh-${vm.id}.sock`), {
      host: vm.network!.guestIp,
      port: 22,
    });
    try {
      const ssh = await sshConnect(forwarder, keys.private, vm.sshHostPublicKey, SSH_READY_MS);
      try {
        const result = await sshExec(ssh, command);
        assert.equal(result.code, 0, `\`${command}\` failed in ${vm.id}: ${result.stderr}`);
        return result.stdout;
      } finally {
        ssh.end();
      }
    } finally {
      await forwarder.stop();
    }
  }

  /**
   * Runs `prepare`, then freezes the guest's root filesystem in an SSH session that stays open (a new
   * login would block on the frozen disk) until thaw() unfreezes it and closes.
   */
  async function frozenGuest(vm: Vm, prepare: string): Promise<{ thaw(): Promise<void> }> {
    const forwarder = await NetnsForwarder.start(lab.hostNetns, join(dir, `freeze-${vm.id}.sock`), {
      host: vm.network!.guestIp,
      port: 22,
    });
    const ssh = await sshConnect(forwarder, keys.private, vm.sshHostPublicKey, SSH_READY_MS);
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      ssh.exec(`${prepare} && fsfreeze --freeze / && echo frozen && read _; fsfreeze --unfreeze /`, (error, stream) =>
        error ? reject(error) : resolve(stream),
      ),
    );
    const closed = new Promise<number>((resolve) => channel.on('close', (exitCode: number) => resolve(exitCode)));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      channel.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('frozen')) resolve();
      });
      void closed.then((exitCode) => reject(new Error(`freezing ${vm.id} failed (exit ${exitCode}): ${output}`)));
    });
    return {
      async thaw() {
        channel.end('\n');
        const exitCode = await closed;
        ssh.end();
        await forwarder.stop();
        assert.equal(exitCode, 0, `fsfreeze --unfreeze in ${vm.id}`);
      },
    };
  }

  async function waitForState(vmId: string, state: VmState, withinMs: number): Promise<Vm> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const vm = await getVm(vmId);
      if (vm.state === state || Date.now() > deadline) return vm;
      await sleep(200);
    }
  }

  /** Nothing of the VM may remain: netns, veth/tap, IP lease, CNI cache, state dir, process. */
  async function assertNothingLeft(vmId: string): Promise<void> {
    const netns = execFileSync('ip', ['netns', 'list'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.ok(!netns.includes(`kindling-test-${vmId}`), `netns of ${vmId} is gone`);
    const links = lab.execInHost(['ip', '-o', 'link']);
    assert.ok(!/veth/.test(links), `no veth is left in the host netns:\n${links}`);
    const leases = (await readdir(join(lab.dataDir, NETWORK)).catch(() => [])).filter(
      (name) => name !== 'lock' && !name.startsWith('last_reserved_ip'),
    );
    assert.deepEqual(leases, [], 'host-local holds no lease');
    const cache = await readdir(lab.cacheDir, { recursive: true }).catch(() => []);
    assert.ok(!cache.some((name) => String(name).includes(vmId)), `no CNI cache entry for ${vmId}`);
    assert.ok(!existsSync(join(dir, 'state/vms', vmId)), 'no VM state dir (disk copy, sockets, record)');
    const processes = execFileSync('ps', ['-eo', 'stat,args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`kindling-${vmId} `) && !line.trim().startsWith('Z'));
    assert.deepEqual(processes, [], 'no qemu process');
  }

  before(async () => {
    build = await ensureDebianBase();
    dir = await makeTempDir('vm-lifecycle');
    lab = await CniLab.create();
    await lab.addNetwork({ name: NETWORK, cniVersion: '1.0.0', subnetOctet: 77 });
    await startVmm();
    await registerBaseOsBuild(vmm.running.catalog, build.dir, build.imageJson);
  });

  after(async () => {
    if (vmm) {
      const { vms } = await call<object, ListVmsResponse>(vmm.client, 'listVms', {
        state: 0,
        buildId: '',
      }).catch(() => ({
        vms: [] as Vm[],
      }));
      for (const vm of vms) await call(vmm.client, 'deleteVm', { vmId: vm.id }).catch(() => undefined);
      await vmm.stop();
    }
    await lab?.cleanup();
    if (dir) await removeDir(dir);
  });

  it('boots debian:bookworm, SSH with the pinned host key, writes a file, stops gracefully, commits test:one', async () => {
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', {
      spec: spec('debian:bookworm', keys.public, 4 * MiB),
      vmId: 'vm-first',
      start: true,
    });
    assert.equal(vm?.state, VmState.VM_STATE_RUNNING);
    assert.match(vm?.network?.guestCidr ?? '', /^10\.231\.77\.\d+\/24$/);
    const out = await inGuest(
      vm!,
      'echo kindling-was-here > /root/marker && sync && df -B1 --output=size / | tail -1',
    );
    assert.ok(Number(out.trim()) > 2.5 * GiB, `root filesystem grown to ~3 GiB, got ${out.trim()} bytes`);

    // The transfer disk: vdb, read-only, and what the host writes is what the guest reads with
    // O_DIRECT, also when the same region is written again (no stale page in the guest).
    assert.equal(vm?.transferDiskDevice, '/dev/vdb');
    assert.equal((await inGuest(vm!, 'findmnt -n -o SOURCE / && cat /sys/block/vdb/ro')).trim(), '/dev/vda\n1');
    for (const round of [1, 2]) {
      const bytes = randomBytes(2.5 * MiB);
      const digest = createHash('sha256').update(bytes).digest('hex');
      await writeTransfer({ vmId: 'vm-first', offset: String(MiB), size: String(bytes.length), digest: `sha256:${digest}`, fromFetcherCache: false }, bytes);
      const read = await inGuest(vm!, `dd if=/dev/vdb bs=1M skip=1 count=3 iflag=direct status=none | head -c ${bytes.length} | sha256sum`);
      assert.equal(read.split(' ')[0], digest, `round ${round}: the guest reads the bytes written`);
    }

    // Generous deadlines: TCG guests on a busy 2-core host are slow to power off, and the commit hashes the disk.
    const stopped = await call<object, StopVmResponse>(
      vmm.client,
      'stopVm',
      { vmId: 'vm-first', force: false },
      300_000,
    );
    assert.equal(stopped.graceful, true, `the guest powered off by itself: ${stopped.vm?.stateReason}`);
    assert.equal(stopped.vm?.state, VmState.VM_STATE_STOPPED);

    const commit = async (image: string, shrink: boolean) =>
      (
        await call<object, CommitVmResponse>(
          vmm.client,
          'commitVm',
          { vmId: 'vm-first', image, shrink, overwrite: false },
          600_000,
        )
      ).image!;
    const image = await commit('test:one', false);
    assert.equal(image.parent, 'debian:bookworm');
    assert.equal(image.sizeBytes, String(3 * GiB));
    const committed = join(dir, 'state/images/test/one/rootfs.ext4');
    const vmDisk = join(dir, 'state/vms/vm-first/rootfs.ext4');
    const cat = (path: string, file = committed) =>
      execFileSync('debugfs', ['-R', `cat ${path}`, file], { encoding: 'utf8', stdio: 'pipe' });
    assert.equal(cat('/root/marker').trim(), 'kindling-was-here');
    assert.equal(cat('/etc/ssh/ssh_host_ed25519_key'), '', 'the VM host key does not outlive the VM');
    assert.equal(cat('/etc/kindling/guest.json'), '');
    assert.equal(statSync(committed).ino, statSync(vmDisk).ino, 'the image took the stopped VM disk itself');
    const small = await commit('test:small', true);
    assert.ok(Number(small.sizeBytes) < 2 * GiB, `shrunk with resize2fs -M: ${small.sizeBytes} bytes`);
    assert.notEqual(small.digest, image.digest);

    const states = events.filter((e) => e.event?.vmId === 'vm-first').map((e) => VmState[e.event!.state]);
    assert.deepEqual(states, [
      'VM_STATE_CREATED',
      'VM_STATE_STARTING',
      'VM_STATE_RUNNING',
      'VM_STATE_STOPPING',
      'VM_STATE_STOPPED',
    ]);

    // Run again after a simulated host reboot (its netns is gone, its IP lease is not): the VM gets a
    // network again, and a disk of its own back with its identity, so the pinned host key still holds.
    execFileSync('ip', ['netns', 'delete', 'kindling-test-vm-first']);
    const restarted = (await call<object, { vm: Vm }>(vmm.client, 'startVm', { vmId: 'vm-first' }, 300_000))
      .vm;
    assert.notEqual(statSync(vmDisk).ino, statSync(committed).ino);
    assert.equal((await inGuest(restarted, 'cat /root/marker')).trim(), 'kindling-was-here');
    assert.equal(cat('/etc/kindling/guest.json'), '', 'the image is untouched by the restart');
    const again = (
      await call<object, { image: { digest: string } }>(vmm.client, 'getImage', { image: 'test:one' })
    ).image;
    assert.equal(again.digest, image.digest);
    await call(vmm.client, 'deleteVm', { vmId: 'vm-first' });
    await assertNothingLeft('vm-first');
  });

  it('boots test:one and sees the file; a vmm restart re-adopts the running VM', async () => {
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', {
      spec: spec('test:one', keys.public),
      vmId: 'vm-second',
      start: true,
    });
    assert.equal((await inGuest(vm!, 'cat /root/marker')).trim(), 'kindling-was-here');

    await vmm.stop();
    await startVmm();
    const adopted = await getVm('vm-second');
    assert.equal(adopted.state, VmState.VM_STATE_RUNNING);
    assert.equal(adopted.pid, vm!.pid, 'the same qemu process');
    assert.equal(adopted.stateReason, '', 'CNI CHECK passes');
    assert.equal((await inGuest(adopted, 'cat /root/marker')).trim(), 'kindling-was-here');

    // A live commit, as the step cache takes it: the guest filesystem frozen for the copy, the VM running on.
    await assert.rejects(
      call(vmm.client, 'commitVm', { vmId: 'vm-second', image: 'test:not-live', shrink: false, overwrite: false }),
      (e) => (e as ServiceError).code === Status.FAILED_PRECONDITION && /StopVm/.test((e as ServiceError).details),
    );
    const frozen = await frozenGuest(adopted, 'echo live-commit > /root/live && sync');
    let liveImage: Image;
    try {
      liveImage = (
        await call<object, CommitVmResponse>(
          vmm.client,
          'commitVm',
          { vmId: 'vm-second', image: 'test:live', shrink: false, overwrite: false, live: true },
          600_000,
        )
      ).image!;
    } finally {
      await frozen.thaw();
    }
    assert.equal(liveImage.parent, 'test:one');
    const liveRootfs = join(dir, 'state/images/test/live/rootfs.ext4');
    const catLive = (path: string) => execFileSync('debugfs', ['-R', `cat ${path}`, liveRootfs], { encoding: 'utf8', stdio: 'pipe' });
    assert.equal(catLive('/root/live').trim(), 'live-commit');
    assert.equal(catLive('/etc/kindling/guest.json'), '', 'identity stripped as in any commit');
    assert.notEqual(statSync(liveRootfs).ino, statSync(join(dir, 'state/vms/vm-second/rootfs.ext4')).ino, 'a copy, not the live disk');
    const afterCommit = await getVm('vm-second');
    assert.equal(afterCommit.state, VmState.VM_STATE_RUNNING);
    assert.equal(afterCommit.pid, vm!.pid);
    assert.equal((await inGuest(afterCommit, 'echo still-usable > /root/after && cat /root/live')).trim(), 'live-commit');

    // SnapshotVm: answers once the disk is taken, so the guest thaws and writes on while the copy is stored.
    const snapFrozen = await frozenGuest(afterCommit, 'echo in-snapshot > /root/snap && sync');
    let thawed = false;
    const thawOnce = async () => {
      if (!thawed) await snapFrozen.thaw();
      thawed = true;
    };
    const answers: string[] = [];
    let snapshot: Image | undefined;
    try {
      const stream = vmm.client.snapshotVm({ vmId: 'vm-second', image: 'test:snap', overwrite: false });
      for await (const { progress } of stream as AsyncIterable<SnapshotVmResponse>) {
        answers.push(progress?.$case ?? 'none');
        if (progress?.$case === 'diskTaken') {
          await thawOnce();
          await inGuest(afterCommit, 'echo after-snapshot > /root/late && sync');
        }
        if (progress?.$case === 'image') snapshot = progress.value;
      }
    } finally {
      await thawOnce();
    }
    assert.deepEqual(answers, ['diskTaken', 'image']);
    assert.equal(snapshot?.name, 'test');
    assert.equal(snapshot?.tag, 'snap');
    const snapRootfs = join(dir, 'state/images/test/snap/rootfs.ext4');
    const catSnap = (path: string) => execFileSync('debugfs', ['-R', `cat ${path}`, snapRootfs], { encoding: 'utf8', stdio: 'pipe' });
    assert.equal(catSnap('/root/snap').trim(), 'in-snapshot');
    assert.equal(catSnap('/root/late'), '', 'what the guest wrote after disk_taken is not in the snapshot');
    assert.equal(catSnap('/etc/kindling/guest.json'), '', 'identity stripped as in any commit');
    await assert.rejects(
      (async () => {
        for await (const message of vmm.client.snapshotVm({ vmId: 'vm-second', image: 'test:snap', overwrite: false }) as AsyncIterable<unknown>) void message;
      })(),
      (e) => (e as ServiceError).code === Status.ALREADY_EXISTS,
    );
  });

  it('a VM whose qemu is killed becomes FAILED, and DeleteVm leaves nothing behind', async () => {
    const vm = await getVm('vm-second');
    process.kill(vm.pid, 'SIGKILL');
    const failed = await waitForState('vm-second', VmState.VM_STATE_FAILED, 15_000);
    assert.equal(failed.state, VmState.VM_STATE_FAILED);
    assert.match(failed.stateReason, /exited without being asked to stop/);
    await assert.rejects(
      call(vmm.client, 'commitVm', { vmId: 'vm-second', image: 'test:dead', shrink: false, overwrite: false, live: true }),
      (e) => (e as ServiceError).code === Status.FAILED_PRECONDITION && /live commit takes a RUNNING VM/.test((e as ServiceError).details),
    );
    await call(vmm.client, 'deleteVm', { vmId: 'vm-second' });
    await assertNothingLeft('vm-second');
  });

  it('a vmm restart marks a VM whose qemu died meanwhile FAILED and cleans its leftovers', async () => {
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', {
      spec: spec('debian:bookworm', keys.public),
      vmId: 'vm-third',
      start: true,
    });
    await vmm.stop();
    process.kill(vm!.pid, 'SIGKILL');
    await sleep(500);
    await startVmm();
    const reconciled = await getVm('vm-third');
    assert.equal(reconciled.state, VmState.VM_STATE_FAILED);
    assert.match(reconciled.stateReason, /exited while the vmm was not running/);
    assert.equal(reconciled.pid, 0);
    assert.ok(!existsSync(join(dir, 'state/vms/vm-third/qmp.sock')), 'the QMP socket is cleaned');
    assert.ok(existsSync(join(dir, 'state/vms/vm-third/console.log')), 'the console log stays for diagnosis');
    const consoleLog = await readFile(join(dir, 'state/vms/vm-third/console.log'), 'utf8');
    assert.ok(consoleLog.length > 0);
    await call(vmm.client, 'deleteVm', { vmId: 'vm-third' });
    await assertNothingLeft('vm-third');
  });
});
