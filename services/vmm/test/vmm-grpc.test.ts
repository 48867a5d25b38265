/**
 * The VmmService over real gRPC without booting anything: the image store (import, list, get,
 * delete refusing images in use), CreateVm's disk preparation and guest files, idempotent
 * CreateVm, WatchVms, DeleteVm, and bad input that must fail with the right code and create nothing;
 * kindling_vms on a metrics endpoint scraped over HTTP.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { VmEvent, VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type {
  CreateVmResponse,
  GetHostInfoResponse,
  GetImageResponse,
  ImportImageResponse,
  ListImagesResponse,
  ListKernelsResponse,
  ListVmsResponse,
  StopVmResponse,
  WatchVmsResponse,
  WriteVmTransferHeader,
  WriteVmTransferResponse,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createLogger, startMetricsServer } from '@kindling/runtime';
import { sampleValue, scrapeMetrics } from '@kindling/runtime/testing';
import { registerVmsGauge } from '../src/adapters/metrics/vm-metrics.ts';
import { call, makeTempDir, needsRootAnd, removeDir, startTestVmm, type VmmUnderTest } from './support/vmm-harness.ts';
import { referenceDigest } from './support/reference-digest.ts';

const MIB = 1024 * 1024;

const skip = needsRootAnd(['debugfs', 'resize2fs', 'ssh-keygen', 'ip']);

const spec = (overrides: Record<string, unknown> = {}) => ({
  image: 'test/tiny:one',
  kernelId: '',
  vcpus: 1,
  memoryMib: 256,
  diskSizeBytes: '0',
  network: '',
  authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2QrIp9nPXbXOZf0YFQxgXkDbNpGYvYhQ7dVRFSUnNU test'],
  hostname: '',
  extraKernelArgs: '',
  labels: {},
  buildId: '',
  transferDiskBytes: '0',
  ...overrides,
});

const code = (error: unknown) => (error as ServiceError).code;

describe('vmm gRPC: images, VM records, bad input', { skip }, () => {
  let dir: string;
  let vmm: VmmUnderTest;
  const stateDir = () => join(dir, 'state');
  const vmDirs = async () => readdir(join(stateDir(), 'vms')).catch(() => []);
  const importTiny = (image: string, kernelId = '') =>
    call<object, ImportImageResponse>(vmm.client, 'importImage', {
      rootfsPath: join(dir, 'tiny.ext4'),
      image,
      kernelId,
      overwrite: false,
    });
  const testNetns = () =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')
      .filter((l) => l.startsWith('kindling-test-vm-'));

  before(async () => {
    dir = await makeTempDir('vmm-grpc');
    await mkdir(join(dir, 'tree/etc'), { recursive: true });
    // an init, so CreateVm takes the image as bootable (it refuses one without)
    await mkdir(join(dir, 'tree/sbin'), { recursive: true });
    await writeFile(join(dir, 'tree/sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(dir, 'tree/etc/hostname'), 'tiny\n');
    execFileSync('truncate', ['-s', '32M', join(dir, 'tiny.ext4')]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(dir, 'tree'), join(dir, 'tiny.ext4')]);
    await writeFile(join(dir, 'vmlinuz'), 'not a kernel: these tests never boot');
    execFileSync('cp', [join(dir, 'tiny.ext4'), join(dir, 'cut.ext4')]);
    execFileSync('truncate', ['-s', '30M', join(dir, 'cut.ext4')]);
    await mkdir(join(dir, 'conf.d'));
    // A network whose plugin is not installed: refused before a netns exists (no plugin ever runs here).
    await writeFile(
      join(dir, 'conf.d/ghost.conflist'),
      JSON.stringify({ cniVersion: '1.0.0', name: 'ghost', plugins: [{ type: 'no-such-plugin' }] }),
    );
    vmm = await startTestVmm({
      stateDir: stateDir(),
      cniConfDir: join(dir, 'conf.d'),
      cniCacheDir: join(dir, 'cni-cache'),
      fetcherCacheDir: join(dir, 'fetcher-cache'),
    });
    await vmm.running.host.deps.kernels.put('test-kernel', '0.0.0-test', { bzImage: join(dir, 'vmlinuz') });
  });
  after(async () => {
    await vmm?.stop();
    if (dir) await removeDir(dir);
  });

  it('imports an ext4 image from a host path and lists, gets it; a second import needs overwrite', async () => {
    const imported = await call<object, ImportImageResponse>(vmm.client, 'importImage', {
      rootfsPath: join(dir, 'tiny.ext4'),
      image: 'test/tiny:one',
      kernelId: 'test-kernel',
      overwrite: false,
    });
    assert.equal(imported.image?.digest, referenceDigest(join(dir, 'tiny.ext4')));
    assert.equal(imported.image?.sizeBytes, String(32 << 20));
    assert.ok(Number(imported.image?.allocatedBytes) < 32 << 20, 'stored sparse');
    const listed = await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '' });
    assert.deepEqual(
      listed.images.map((i) => `${i.name}:${i.tag}`),
      ['test/tiny:one'],
    );
    const byName = await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: 'test/tiny' });
    assert.deepEqual(
      byName.images.map((i) => `${i.name}:${i.tag}`),
      ['test/tiny:one'],
    );
    await assert.rejects(
      call(vmm.client, 'listImages', { name: 'test/tiny:one' }),
      (e) =>
        code(e) === Status.INVALID_ARGUMENT && /GetImage takes name:tag/.test((e as ServiceError).details),
    );
    const got = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'test/tiny:one' });
    assert.equal(got.image?.kernelId, 'test-kernel');
    await assert.rejects(importTiny('test/tiny:one'), (e) => code(e) === Status.ALREADY_EXISTS);
    for (const [rootfsPath, status, message] of [
      [dir, Status.INVALID_ARGUMENT, /is a directory: ImportImage takes an ext4 image file/],
      ['/dev/null', Status.INVALID_ARGUMENT, /is not a regular file/],
      [join(dir, 'missing.ext4'), Status.NOT_FOUND, /no file at .*missing\.ext4/],
      [join(dir, 'vmlinuz'), Status.INVALID_ARGUMENT, /is not an ext4 image/],
      [
        join(dir, 'cut.ext4'),
        Status.INVALID_ARGUMENT,
        /is 31457280 bytes but its ext4 filesystem spans 33554432/,
      ],
    ] as const) {
      await assert.rejects(
        call(vmm.client, 'importImage', {
          rootfsPath,
          image: 'test/tiny:bad',
          kernelId: '',
          overwrite: false,
        }),
        (e) => code(e) === status && message.test((e as ServiceError).details),
        rootfsPath,
      );
    }
    await assert.rejects(
      importTiny('test/tiny:path-kernel', '../kernels/test-kernel'),
      (e) =>
        code(e) === Status.INVALID_ARGUMENT && /kernel id .* is not valid/.test((e as ServiceError).details),
    );
    const kernels = await call<object, ListKernelsResponse>(vmm.client, 'listKernels', {});
    assert.deepEqual(
      kernels.kernels.map((k) => [k.id, k.hasBzImage]),
      [['test-kernel', true]],
    );
  });

  it('refuses an image that would live inside another one in the store (a:b holds a/b:c), in either order', async () => {
    const nested = (e: unknown) =>
      code(e) === Status.FAILED_PRECONDITION &&
      /cannot be stored beside image/.test((e as ServiceError).details);
    await importTiny('test/nest:a');
    await assert.rejects(importTiny('test/nest/a:b'), nested, 'inside an existing image');
    await importTiny('test/outer/x:y');
    await assert.rejects(importTiny('test/outer:x'), nested, 'around an existing image');
    await call(vmm.client, 'deleteImage', { image: 'test/nest:a' });
    await call(vmm.client, 'deleteImage', { image: 'test/outer/x:y' });
    const listed = await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '' });
    assert.deepEqual(
      listed.images.map((i) => `${i.name}:${i.tag}`),
      ['test/tiny:one'],
    );
  });

  it('reports the host: driver, acceleration, capacity', async () => {
    const info = await call<object, GetHostInfoResponse>(vmm.client, 'getHostInfo', {});
    assert.equal(info.host, 'testhost');
    assert.equal(info.driver, 'qemu');
    assert.match(info.accel, /^(kvm|tcg)$/);
    if (existsSync('/sys/module/kvm_pvm'))
      assert.equal(info.accel, 'tcg', 'paravirtual KVM cannot boot stock guests');
    assert.ok(info.cpus >= 1 && Number(info.memoryBytes) > 0 && Number(info.diskFreeBytes) > 0);
    assert.equal(info.runningVms, 0);
  });

  it('refuses bad input with the right code and leaves nothing behind', async () => {
    const netnsBefore = testNetns();
    const cases: [Record<string, unknown>, Status, RegExp][] = [
      [spec({ image: 'test/nope:1' }), Status.NOT_FOUND, /image test\/nope:1 does not exist/],
      [spec({ kernelId: 'no-such-kernel' }), Status.NOT_FOUND, /kernel no-such-kernel does not exist/],
      [spec({ diskSizeBytes: String(16 << 20) }), Status.INVALID_ARGUMENT, /smaller than image/],
      [spec({ network: 'no-such-network' }), Status.FAILED_PRECONDITION, new RegExp(join(dir, 'conf.d'))],
      [spec({ image: 'Bad Name' }), Status.INVALID_ARGUMENT, /not valid/],
      [
        spec({ hostname: 'a init=/bin/sh' }),
        Status.INVALID_ARGUMENT,
        /hostname "a init=\/bin\/sh" is not valid/,
      ],
      [spec({ hostname: 'a:b' }), Status.INVALID_ARGUMENT, /hostname "a:b" is not valid/],
      [spec({ extraKernelArgs: 'quiet\ninit=/bin/sh' }), Status.INVALID_ARGUMENT, /control character/],
      [
        spec({ authorizedKeys: ['ssh-ed25519 AAAAC3Nza x\ncommand="sh" ssh-ed25519 AAAAC3Nzb y'] }),
        Status.INVALID_ARGUMENT,
        /authorized_keys\[0\] .* is not an SSH public key/,
      ],
      [spec({ authorizedKeys: ['not a key'] }), Status.INVALID_ARGUMENT, /authorized_keys\[0\] "not a key"/],
      [
        spec({ memoryMib: 4_000_000_000 }),
        Status.INVALID_ARGUMENT,
        /memory 4000000000 MiB is more than this host has/,
      ],
      [
        spec({ diskSizeBytes: '1000000000000000000' }),
        Status.INVALID_ARGUMENT,
        /disk size 1000000000000000000 bytes is more than the 16 TiB/,
      ],
      [
        spec({ kernelId: '../kernels/test-kernel' }),
        Status.INVALID_ARGUMENT,
        /kernel id "..\/kernels\/test-kernel" is not valid/,
      ],
      [spec({ network: 'ghost' }), Status.FAILED_PRECONDITION, /CNI plugin "no-such-plugin" not found/],
    ];
    for (const [request, status, message] of cases) {
      await assert.rejects(
        call(vmm.client, 'createVm', { spec: request, vmId: 'bad-input', start: false }),
        (e) => code(e) === status && message.test((e as ServiceError).details),
        `expected ${Status[status]} for ${JSON.stringify(request)}`,
      );
    }
    assert.deepEqual(await vmDirs(), [], 'no VM directory');
    assert.deepEqual(testNetns(), netnsBefore, 'no netns');
    assert.deepEqual(await readdir(join(dir, 'cni-cache')).catch(() => []), [], 'no CNI cache entry');
    await assert.rejects(
      call(vmm.client, 'getVm', { vmId: 'bad-input' }),
      (e) => code(e) === Status.NOT_FOUND && /VM bad-input does not exist/.test((e as ServiceError).details),
    );
  });

  it('refuses a VM id that is not one (a path) on every VM call, without touching the VM it points at', async () => {
    await importTiny('test/tiny:ids', 'test-kernel');
    await call(vmm.client, 'createVm', {
      spec: spec({ image: 'test/tiny:ids' }),
      vmId: 'vm-target',
      start: false,
    });
    const path = '../vms/vm-target';
    const calls: [string, object][] = [
      ['getVm', { vmId: path }],
      ['deleteVm', { vmId: path }],
      ['startVm', { vmId: path }],
      ['stopVm', { vmId: path, force: true }],
      ['commitVm', { vmId: path, image: 'test/tiny:stolen', shrink: false, overwrite: false }],
    ];
    for (const [method, request] of calls) {
      await assert.rejects(
        call(vmm.client, method, request),
        (e) =>
          code(e) === Status.INVALID_ARGUMENT &&
          /VM id "\.\.\/vms\/vm-target" is not valid/.test((e as ServiceError).details),
        method,
      );
    }
    const watchError = await new Promise<ServiceError>((resolve) => {
      const stream = vmm.client.watchVms({ vmId: path });
      stream.on('data', () => undefined);
      stream.on('error', resolve);
    });
    assert.equal(watchError.code, Status.INVALID_ARGUMENT, 'WatchVms of a path ends at once');
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'getVm', { vmId: 'vm-target' });
    assert.equal(vm?.state, VmState.VM_STATE_CREATED, 'the VM the path pointed at is untouched');
    await call(vmm.client, 'deleteVm', { vmId: 'vm-target' });
    await call(vmm.client, 'deleteImage', { image: 'test/tiny:ids' });
  });

  it('gives a VM a sparse, read-only transfer disk that WriteVmTransfer fills, checked, and DeleteVm removes', async () => {
    /** WriteVmTransfer with the header first, then the chunks. */
    const writeTransfer = (header: WriteVmTransferHeader, chunks: Buffer[]): Promise<WriteVmTransferResponse> =>
      new Promise((resolve, reject) => {
        const stream = vmm.client.writeVmTransfer((error, response) => (error ? reject(error) : resolve(response!)));
        stream.write({ part: { $case: 'header', value: header } });
        for (const chunk of chunks) stream.write({ part: { $case: 'chunk', value: chunk } });
        stream.end();
      });
    const request = { spec: spec({ transferDiskBytes: String(3 * MIB - 1) }), vmId: 'vm-transfer', start: false };
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', request);
    assert.equal(vm?.transferDiskDevice, '/dev/vdb');
    assert.equal(vm?.spec?.transferDiskBytes, String(3 * MIB), 'rounded up to a whole MiB');
    const file = join(stateDir(), 'vms/vm-transfer/transfer.img');
    assert.equal((await stat(file)).size, 3 * MIB);
    assert.equal((await stat(file)).blocks, 0, 'sparse: no host space until written');

    const bytes = randomBytes(1.5 * MIB);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const header = { vmId: 'vm-transfer', offset: String(MIB), size: String(bytes.length), digest, fromFetcherCache: false };
    const written = await writeTransfer(header, [bytes.subarray(0, MIB), bytes.subarray(MIB)]);
    assert.deepEqual(written, { bytesWritten: String(bytes.length), device: '/dev/vdb' });
    const disk = await readFile(file);
    assert.ok(disk.subarray(MIB, MIB + bytes.length).equals(bytes), 'the bytes are at the offset');
    assert.ok(disk.subarray(0, MIB).every((b) => b === 0), 'the rest is untouched');

    // a blob of the fetcher's cache on this host: no bytes sent, still hashed
    const cached = randomBytes(MIB);
    const cachedHex = createHash('sha256').update(cached).digest('hex');
    await mkdir(join(dir, 'fetcher-cache', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'fetcher-cache', 'sha256', cachedHex), cached);
    const fromCache = { ...header, offset: '0', size: String(MIB), digest: `sha256:${cachedHex}`, fromFetcherCache: true };
    assert.equal((await writeTransfer(fromCache, [])).bytesWritten, String(MIB));
    assert.ok((await readFile(file)).subarray(0, MIB).equals(cached), 'read from the fetcher cache into the disk');
    await writeFile(join(dir, 'fetcher-cache', 'sha256', cachedHex), randomBytes(MIB));
    await assert.rejects(writeTransfer(fromCache, []), (e) => code(e) === Status.INVALID_ARGUMENT && /hash to/.test((e as ServiceError).details), 'a corrupt cache file is caught');

    const refused: [string, Record<string, unknown>, Buffer[], Status, RegExp][] = [
      ['a blob not in the fetcher cache', { fromFetcherCache: true }, [], Status.FAILED_PRECONDITION, /is not in the fetcher cache on host testhost: send its bytes/],
      ['bytes besides from_fetcher_cache', { ...fromCache }, [bytes], Status.INVALID_ARGUMENT, /no bytes may follow the header/],
      ['an offset off the MiB grid', { offset: String(MIB + 512) }, [bytes], Status.INVALID_ARGUMENT, /not a multiple of 1048576/],
      ['a write past the end', { offset: String(2 * MIB) }, [bytes], Status.INVALID_ARGUMENT, /past the end of VM vm-transfer's transfer disk \(3145728 bytes\)/],
      ['bytes that do not hash to the digest', {}, [randomBytes(bytes.length)], Status.INVALID_ARGUMENT, /hash to sha256:[0-9a-f]{64}, not header.digest/],
      ['fewer bytes than the size', {}, [bytes.subarray(1)], Status.INVALID_ARGUMENT, /bytes were sent, header.size says/],
      ['a VM without a transfer disk', { vmId: 'vm-plain' }, [bytes], Status.FAILED_PRECONDITION, /VM vm-plain has no transfer disk/],
      ['an unknown VM', { vmId: 'vm-nope' }, [bytes], Status.NOT_FOUND, /vm-nope/],
    ];
    await call(vmm.client, 'createVm', { spec: spec(), vmId: 'vm-plain', start: false });
    for (const [what, change, chunks, expected, message] of refused) {
      await assert.rejects(writeTransfer({ ...header, ...change }, chunks), (e) => code(e) === expected && message.test((e as ServiceError).details), what);
    }
    const noHeader = new Promise((resolve, reject) => {
      const stream = vmm.client.writeVmTransfer((error, response) => (error ? reject(error) : resolve(response)));
      stream.write({ part: { $case: 'chunk', value: bytes } });
      stream.end();
    });
    await assert.rejects(noHeader, (e) => code(e) === Status.INVALID_ARGUMENT && /first message must be the header/.test((e as ServiceError).details));
    for (const vmId of ['vm-transfer', 'vm-plain']) await call(vmm.client, 'deleteVm', { vmId });
    assert.ok(!existsSync(file), 'the transfer disk goes with its VM');
  });

  it('creates a VM: grown disk copy with guest files and a fresh host key; CreateVm is idempotent; events are streamed', async () => {
    const events: WatchVmsResponse[] = [];
    const stream = vmm.client.watchVms({ vmId: '' });
    stream.on('data', (event: WatchVmsResponse) => events.push(event));
    stream.on('error', () => undefined);
    const published: { subject: string; event: VmEvent }[] = [];
    const subscription = vmm.bus.subscribe('kindling.vm.>', (m) =>
      published.push({ subject: m.subject, event: VmEvent.decode(m.data) }),
    );
    const request = { spec: spec({ diskSizeBytes: String(64 << 20) }), vmId: 'vm-tiny', start: false };
    const { vm } = await call<object, CreateVmResponse>(vmm.client, 'createVm', request);
    assert.equal(vm?.state, VmState.VM_STATE_CREATED);
    assert.match(vm?.sshHostPublicKey ?? '', /^ssh-ed25519 \S+ kindling-vm-tiny$/);
    assert.match(vm?.sshHostKeyFingerprint ?? '', /^SHA256:/);
    assert.equal(vm?.diskSizeBytes, String(64 << 20));
    const disk = join(stateDir(), 'vms/vm-tiny/rootfs.ext4');
    const read = (path: string) =>
      execFileSync('debugfs', ['-R', `cat ${path}`, disk], { encoding: 'utf8', stdio: 'pipe' });
    const guest = JSON.parse(read('/etc/kindling/guest.json')) as { vmId: string; authorizedKeys: string[] };
    assert.equal(guest.vmId, 'vm-tiny');
    assert.deepEqual(guest.authorizedKeys, request.spec.authorizedKeys);
    assert.equal(read('/etc/ssh/ssh_host_ed25519_key.pub').trim(), vm?.sshHostPublicKey);
    assert.equal(read('/root/.ssh/authorized_keys').trim(), request.spec.authorizedKeys[0]);
    execFileSync('e2fsck', ['-fn', disk], { stdio: 'pipe' });

    const byState = await call<object, ListVmsResponse>(vmm.client, 'listVms', {
      state: VmState.VM_STATE_CREATED,
      buildId: '',
    });
    assert.deepEqual(
      byState.vms.map((v) => v.id),
      ['vm-tiny'],
    );
    const running = await call<object, ListVmsResponse>(vmm.client, 'listVms', {
      state: VmState.VM_STATE_RUNNING,
      buildId: '',
    });
    assert.deepEqual(running.vms, []);
    registerVmsGauge(vmm.running.queries, createLogger('test', 'silent'));
    const metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, logger: createLogger('test', 'silent') });
    try {
      const { samples } = await scrapeMetrics(metrics.url);
      assert.equal(sampleValue(samples, 'kindling_vms', { state: 'CREATED' }), 1);
      assert.equal(sampleValue(samples, 'kindling_vms', { state: 'RUNNING' }), 0);
      // vm-target, vm-transfer and vm-plain of the tests before were created too: the histogram counts every call of the process
      const created = sampleValue(samples, 'kindling_rpc_duration_seconds_count', { service: 'kindling.vmm.v1.VmmService', method: 'CreateVm', code: 'OK' });
      assert.equal(created, 4);
    } finally {
      await metrics.close();
    }
    await assert.rejects(
      call(vmm.client, 'listVms', { state: 99, buildId: '' }),
      (e) =>
        code(e) === Status.INVALID_ARGUMENT && /state 99 is not a VmState/.test((e as ServiceError).details),
      'an unknown state filter is refused, not read as "every VM"',
    );
    const stopped = await call<object, StopVmResponse>(vmm.client, 'stopVm', {
      vmId: 'vm-tiny',
      force: false,
    });
    assert.equal(stopped.vm?.state, VmState.VM_STATE_CREATED, 'stopping a VM that never ran changes nothing');
    assert.equal(stopped.graceful, true, 'its disk is consistent: it was never killed');
    await assert.rejects(
      call(vmm.client, 'stopVm', { vmId: 'vm-tiny', force: false, timeout: { seconds: '-5', nanos: 0 } }),
      (e) => code(e) === Status.INVALID_ARGUMENT && /is negative/.test((e as ServiceError).details),
    );

    const again = await call<object, CreateVmResponse>(vmm.client, 'createVm', request);
    assert.equal(again.vm?.sshHostPublicKey, vm?.sshHostPublicKey, 'a repeated CreateVm returns the same VM');
    await assert.rejects(
      call(vmm.client, 'createVm', { ...request, spec: spec({ vcpus: 2 }) }),
      (e) => code(e) === Status.ALREADY_EXISTS,
    );
    for (const different of [{ hostname: 'another-name' }, { labels: { team: 'other' } }]) {
      await assert.rejects(
        call(vmm.client, 'createVm', {
          ...request,
          spec: spec({ diskSizeBytes: String(64 << 20), ...different }),
        }),
        (e) => code(e) === Status.ALREADY_EXISTS,
        `a CreateVm differing in ${Object.keys(different)[0]} is another VM, not a retry`,
      );
    }

    await assert.rejects(call(vmm.client, 'deleteImage', { image: 'test/tiny:one' }), (e) => {
      return code(e) === Status.FAILED_PRECONDITION && /used by VM vm-tiny/.test((e as ServiceError).details);
    });
    await assert.rejects(
      call(vmm.client, 'commitVm', {
        vmId: 'vm-tiny',
        image: 'test/tiny:two',
        shrink: false,
        overwrite: false,
      }),
      (e) => code(e) === Status.FAILED_PRECONDITION && /STOPPED/.test((e as ServiceError).details),
    );
    await call(vmm.client, 'deleteVm', { vmId: 'vm-tiny' });
    assert.deepEqual(await vmDirs(), []);
    await call(vmm.client, 'deleteImage', { image: 'test/tiny:one' });
    const listed = await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '' });
    assert.deepEqual(listed.images, []);

    await new Promise((resolve) => setTimeout(resolve, 100));
    stream.cancel();
    const states = events.filter((e) => e.event?.vmId === 'vm-tiny').map((e) => e.event?.state);
    assert.deepEqual(states, [VmState.VM_STATE_CREATED, VmState.VM_STATE_DELETED]);
    subscription.unsubscribe();
    assert.deepEqual(
      published.map((p) => [p.subject, p.event.state, p.event.previousState]),
      [
        ['kindling.vm.testhost.vm-tiny.state', VmState.VM_STATE_CREATED, VmState.VM_STATE_UNSPECIFIED],
        ['kindling.vm.testhost.vm-tiny.state', VmState.VM_STATE_DELETED, VmState.VM_STATE_CREATED],
      ],
    );
    assert.ok(Number(published[1]!.event.sequence) > Number(published[0]!.event.sequence));
  });
});
