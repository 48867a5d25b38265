/**
 * The jailer side: argv exactly as jailer.md prescribes for a range of specs, cgroup limits per
 * cgroup version, the socket path limit, and the chroot layout created for real (as root) in a
 * temporary chroot base and removed again.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  allPossibleCgroupDirs,
  cgroupLimits,
  chooseCgroupVersion,
  controllersFor,
  detectCgroupHost,
  jailCgroupDirs,
  parseCgroupMounts,
  removeCgroupDirs,
  type CgroupHost,
} from '../src/adapters/firecracker/cgroups.ts';
import { buildJailerArgv, type JailerInvocation } from '../src/adapters/firecracker/jailer-argv.ts';
import {
  assertJailSocketFits,
  jailLayout,
  prepareJail,
  removeJail,
} from '../src/adapters/firecracker/jail-layout.ts';

const base: JailerInvocation = {
  jailId: 'vm-1',
  execFile: '/usr/local/bin/firecracker',
  uid: 10000,
  gid: 10000,
  chrootBase: '/srv/jailer',
  cgroupVersion: 2,
  cgroups: ['cpu.max=200000 100000', 'memory.max=1207959552'],
  parentCgroup: 'kindling',
  resourceLimits: ['no-file=2048'],
  daemonize: false,
  firecrackerArgs: ['--api-sock', '/run/firecracker.socket'],
};

describe('jailer argv follows jailer.md', () => {
  const table: { name: string; inv: JailerInvocation; argv: string[] }[] = [
    {
      name: 'cgroup v2, no network',
      inv: base,
      // prettier-ignore
      argv: ['--id', 'vm-1', '--exec-file', '/usr/local/bin/firecracker', '--uid', '10000', '--gid', '10000', '--chroot-base-dir', '/srv/jailer',
        '--cgroup-version', '2', '--cgroup', 'cpu.max=200000 100000', '--cgroup', 'memory.max=1207959552', '--parent-cgroup', 'kindling',
        '--resource-limit', 'no-file=2048', '--', '--api-sock', '/run/firecracker.socket'],
    },
    {
      name: 'cgroup v1 in a netns, NUMA pinned, two resource limits, daemonized',
      inv: {
        ...base,
        jailId: 'a1b2c3d4-0000-4000-8000-000000000001',
        netnsPath: '/var/run/netns/kindling-vm-1',
        cgroupVersion: 1,
        cgroups: [
          'cpu.cfs_period_us=100000',
          'cpu.cfs_quota_us=100000',
          'memory.limit_in_bytes=402653184',
          'cpuset.mems=0',
          'cpuset.cpus=0-1',
        ],
        parentCgroup: 'kindling/builds',
        resourceLimits: ['fsize=250000000', 'no-file=1024'],
        daemonize: true,
        uid: 123,
        gid: 100,
        chrootBase: '/j',
      },
      // prettier-ignore
      argv: ['--id', 'a1b2c3d4-0000-4000-8000-000000000001', '--exec-file', '/usr/local/bin/firecracker', '--uid', '123', '--gid', '100', '--chroot-base-dir', '/j',
        '--netns', '/var/run/netns/kindling-vm-1', '--cgroup-version', '1', '--cgroup', 'cpu.cfs_period_us=100000', '--cgroup', 'cpu.cfs_quota_us=100000',
        '--cgroup', 'memory.limit_in_bytes=402653184', '--cgroup', 'cpuset.mems=0', '--cgroup', 'cpuset.cpus=0-1', '--parent-cgroup', 'kindling/builds',
        '--resource-limit', 'fsize=250000000', '--resource-limit', 'no-file=1024', '--daemonize', '--', '--api-sock', '/run/firecracker.socket'],
    },
    {
      name: 'no resource limits, no cgroups',
      inv: { ...base, cgroups: [], resourceLimits: [] },
      // prettier-ignore
      argv: ['--id', 'vm-1', '--exec-file', '/usr/local/bin/firecracker', '--uid', '10000', '--gid', '10000', '--chroot-base-dir', '/srv/jailer',
        '--cgroup-version', '2', '--parent-cgroup', 'kindling', '--', '--api-sock', '/run/firecracker.socket'],
    },
  ];
  for (const row of table) it(row.name, () => assert.deepEqual(buildJailerArgv(row.inv), row.argv));

  it('refuses ids the jailer would refuse', () => {
    assert.throws(() => buildJailerArgv({ ...base, jailId: 'vm_1' }), /VM id "vm_1" cannot be a jailer --id/);
    assert.throws(() => buildJailerArgv({ ...base, jailId: 'x'.repeat(65) }), /1-64 characters/);
    assert.doesNotThrow(() => buildJailerArgv({ ...base, jailId: 'x'.repeat(64) }));
  });
});

describe('cgroup limits per version', () => {
  it('translates vCPUs and memory for v2 and v1', () => {
    const limits = { vcpus: 2, memoryMib: 1024, memoryOverheadMib: 128 };
    assert.deepEqual(cgroupLimits(2, limits), ['cpu.max=200000 100000', 'memory.max=1207959552']);
    assert.deepEqual(cgroupLimits(1, limits), [
      'cpu.cfs_period_us=100000',
      'cpu.cfs_quota_us=200000',
      'memory.limit_in_bytes=1207959552',
    ]);
    assert.deepEqual(cgroupLimits(2, { ...limits, vcpus: 1, numaNode: 1, numaCpus: '8-15' }).slice(-2), [
      'cpuset.mems=1',
      'cpuset.cpus=8-15',
    ]);
    // The jailer splits each value on "=" into exactly two parts and the file name on "." into
    // <controller>.<property>; anything else is refused (CgroupFormat / CgroupInvalidFile).
    for (const version of [1, 2] as const)
      for (const value of cgroupLimits(version, { ...limits, numaNode: 0, numaCpus: '0-3' })) {
        const parts = value.split('=');
        assert.equal(parts.length, 2, value);
        assert.equal(parts[0]?.split('.').length, 2, value);
        assert.notEqual(parts[1], '', value);
      }
  });

  const hybrid = parseCgroupMounts(
    [
      'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
      'cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0',
      'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
      'cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0',
      'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
    ].join('\n'),
  );
  const v1Host: CgroupHost = {
    unified: { mountPoint: '/sys/fs/cgroup/unified', controllers: ['hugetlb'] },
    v1: hybrid.v1,
  };
  const v2Host: CgroupHost = {
    unified: { mountPoint: '/sys/fs/cgroup', controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] },
    v1: {},
  };

  it('detects the controllers of a v1 host whose unified mount has none (this lab host)', () => {
    assert.equal(hybrid.unifiedMount, '/sys/fs/cgroup/unified');
    assert.equal(hybrid.v1.memory, '/sys/fs/cgroup/memory');
    assert.equal(
      chooseCgroupVersion(v1Host, 2, ['cpu', 'memory']),
      1,
      'v2 preferred, but only v1 has the controllers',
    );
    assert.equal(chooseCgroupVersion(v2Host, 2, ['cpu', 'memory']), 2);
    assert.equal(chooseCgroupVersion(v2Host, 1, ['cpu', 'memory']), 2, 'v1 preferred on a pure v2 host');
    assert.equal(chooseCgroupVersion({ v1: {} }, 2, ['cpu', 'memory']), undefined);
  });

  it('knows the directories the jailer creates, for cleanup', () => {
    assert.deepEqual(jailCgroupDirs(v1Host, 1, 'kindling', 'vm-1', ['cpu', 'memory']), [
      '/sys/fs/cgroup/cpu/kindling/vm-1',
      '/sys/fs/cgroup/memory/kindling/vm-1',
    ]);
    assert.deepEqual(jailCgroupDirs(v2Host, 2, 'kindling', 'vm-1', ['cpu', 'memory', 'cpuset']), [
      '/sys/fs/cgroup/kindling/vm-1',
    ]);
  });
});

describe('cgroups on this host', () => {
  it('removes the cgroups the jailer would create for a VM, in the real hierarchy', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (cgroupfs)');
    const host = await detectCgroupHost();
    const parent = `kindling-test-${process.pid}`;
    const usable = chooseCgroupVersion(host, 2, controllersFor(undefined));
    if (usable === undefined) return t.skip('no cgroup hierarchy with cpu and memory on this host');
    const dirs = jailCgroupDirs(host, usable, parent, 'vm-cg', controllersFor(undefined));
    t.after(async () => {
      for (const dir of dirs) await rmdir(dir).catch(() => {});
      for (const dir of dirs) await rmdir(join(dir, '..')).catch(() => {});
    });
    try {
      for (const dir of dirs) await mkdir(dir, { recursive: true });
    } catch (error) {
      return t.skip(`cannot create cgroups here: ${(error as Error).message}`);
    }
    assert.ok(dirs.length > 0);
    assert.ok((await readdir(dirs[0] ?? '')).length > 0, 'a real cgroup directory is full of control files');
    assert.deepEqual(await removeCgroupDirs(allPossibleCgroupDirs(host, parent, 'vm-cg')), []);
    for (const dir of dirs) await assert.rejects(stat(dir), /ENOENT/);
  });
});

describe('jail layout', () => {
  it('puts the socket under <base>/<exec>/<id>/root/run and refuses paths over 107 bytes, naming the chroot base', () => {
    const layout = jailLayout('/srv/jailer', 'firecracker', 'vm-1');
    assert.equal(layout.apiSocketOnHost, '/srv/jailer/firecracker/vm-1/root/run/firecracker.socket');
    assert.equal(layout.pidFileOnHost, '/srv/jailer/firecracker/vm-1/root/firecracker.pid');
    assert.doesNotThrow(() => assertJailSocketFits(layout, '/srv/jailer'));
    const longBase = `/var/lib/kindling/${'deep/'.repeat(10)}jailer`;
    const long = jailLayout(longBase, 'firecracker', 'a1b2c3d4-0000-4000-8000-000000000001');
    assert.throws(
      () => assertJailSocketFits(long, longBase),
      (error: Error) => {
        assert.match(
          error.message,
          new RegExp(
            `^--firecracker-chroot-base ${longBase} makes the API socket path .* 1\\d\\d bytes; the limit is 107: use a shorter --firecracker-chroot-base$`,
          ),
        );
        return true;
      },
    );
  });

  it('is created for real with hard links, copies across filesystems and jail ownership, then removed', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (chown to the jail uid)');
    const work = await mkdtemp(join(tmpdir(), 'kindling-fc-jail-'));
    const shm = await mkdtemp('/dev/shm/kindling-fc-jail-');
    t.after(() =>
      Promise.all([rm(work, { recursive: true, force: true }), rm(shm, { recursive: true, force: true })]),
    );
    const kernel = join(work, 'vmlinux');
    const initrd = join(work, 'initrd.img');
    const rootfs = join(shm, 'rootfs.ext4');
    await writeFile(kernel, 'kernel');
    await writeFile(initrd, 'initrd');
    await chmod(initrd, 0o600);
    await writeFile(rootfs, 'rootfs');
    const layout = jailLayout(join(work, 'jail'), 'firecracker', 'vm-layout');
    const prepared = await prepareJail(
      layout,
      { kernelPath: kernel, initrdPath: initrd, rootfsPath: rootfs },
      10000,
      10001,
    );
    assert.equal(prepared.rootfs, 'copied', '/dev/shm is another filesystem');
    const inJail = (p: string) => stat(join(layout.rootDir, p));
    assert.equal((await inJail('/vmlinux')).ino, (await stat(kernel)).ino, 'kernel is a hard link');
    assert.equal((await inJail('/vmlinux')).uid, 0, 'a shared, world-readable kernel keeps its owner');
    assert.notEqual(
      (await inJail('/initrd.img')).ino,
      (await stat(initrd)).ino,
      'an unreadable initrd is copied',
    );
    for (const p of [
      '/initrd.img',
      '/rootfs.ext4',
      '/firecracker.log',
      '/firecracker.metrics',
      '/run',
      '/',
    ]) {
      const s = await inJail(p);
      assert.deepEqual([p, s.uid, s.gid], [p, 10000, 10001]);
    }
    await removeJail(layout.jailDir);
    assert.deepEqual(await readdir(join(work, 'jail', 'firecracker')), []);
    assert.equal((await stat(rootfs)).uid, 0, 'the copied rootfs left the original alone');

    // Same filesystem: the rootfs is linked, and the link (the VM's own copy) is chowned.
    const sameFs = join(work, 'rootfs.ext4');
    await writeFile(sameFs, 'rootfs');
    const transfer = join(work, 'transfer.img');
    await writeFile(transfer, '');
    const again = await prepareJail(layout, { kernelPath: kernel, rootfsPath: sameFs, transferDiskPath: transfer }, 10000, 10001);
    assert.equal(again.rootfs, 'linked');
    assert.equal((await inJail('/rootfs.ext4')).ino, (await stat(sameFs)).ino);
    assert.equal(again.transferDisk, 'linked', 'the host writes the file the jailed VM reads');
    assert.equal((await inJail('/transfer.img')).ino, (await stat(transfer)).ino);
    assert.equal((await inJail('/transfer.img')).uid, 10000);
    await removeJail(layout.jailDir);
    assert.deepEqual(await readdir(join(work, 'jail', 'firecracker')), []);
  });
});
