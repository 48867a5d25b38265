/**
 * The qemu driver's decisions without booting: which acceleration `auto` picks (and that it probes
 * once), and the microvm command line built from a launch spec. Booting is covered by vm-lifecycle.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AccelerationProbe, hostTscKhz } from '../src/adapters/qemu/acceleration.ts';
import { processStartTime } from '../src/adapters/qemu/host-process.ts';
import { qemuArgv } from '../src/adapters/qemu/qemu-argv.ts';
import { QemuDriver } from '../src/adapters/qemu/qemu-driver.ts';
import { kernelArgs } from '../src/domain/guest-contract.ts';
import type { VmLaunchSpec } from '../src/ports/hypervisor.ts';

test('auto acceleration: TCG under a paravirtual KVM or without vmx/svm, KVM otherwise; probed once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-accel-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const kvmDevice = join(dir, 'kvm');
  await writeFile(kvmDevice, '');
  const cpuinfo = join(dir, 'cpuinfo');
  const pvmModule = join(dir, 'kvm_pvm');
  const probe = () => new AccelerationProbe('auto', { kvmDevice, pvmModule, cpuinfo });

  await writeFile(cpuinfo, 'flags\t\t: fpu vme sse2 avx2\ncpu MHz\t\t: 2100.000\n');
  assert.deepEqual((await probe().resolve()).accel, 'tcg', 'no vmx/svm');
  assert.equal(await hostTscKhz(cpuinfo), 2_100_000);

  await writeFile(cpuinfo, 'flags\t\t: fpu vme vmx sse2\n');
  const withVmx = probe();
  assert.equal((await withVmx.resolve()).accel, 'kvm');
  await mkdir(pvmModule);
  assert.equal((await withVmx.resolve()).accel, 'kvm', 'the answer is cached');
  const pvm = await probe().resolve();
  assert.equal(pvm.accel, 'tcg');
  assert.match(pvm.why, /paravirtual/);

  assert.equal(
    (await new AccelerationProbe('auto', { kvmDevice: join(dir, 'nope'), pvmModule, cpuinfo }).resolve())
      .accel,
    'tcg',
  );
  assert.equal(
    (await new AccelerationProbe('kvm').resolve()).accel,
    'kvm',
    'a configured choice is not probed',
  );
});

test('microvm command line: virtio-mmio disk and NIC on the tap with the CNI MAC, console, QMP, kernel args', () => {
  const spec: VmLaunchSpec = {
    vmId: 'vm-1',
    vcpus: 2,
    memoryMib: 1024,
    kernel: { bzImagePath: '/k/vmlinuz', initrdPath: '/k/initrd.img', vmlinuxPath: '/k/vmlinux' },
    kernelArgs: kernelArgs(
      'kindling-1',
      {
        vmId: 'vm-1',
        networkName: 'n',
        ifName: 'eth0',
        netnsPath: '/var/run/netns/kindling-vm-1',
        tapName: 'tap0',
        guestMac: '02:00:00:00:00:01',
        guestCidr: '10.200.0.5/24',
        guestIp: '10.200.0.5',
        prefixLength: 24,
        netmask: '255.255.255.0',
        gateway: '10.200.0.1',
        nameservers: [],
      },
      'quiet',
    ),
    rootfsPath: '/state/vms/vm-1/root,fs.ext4',
    runDir: '/state/vms/vm-1',
    consoleLogPath: '/state/vms/vm-1/console.log',
    network: {
      netnsPath: '/var/run/netns/kindling-vm-1',
      tapName: 'tap0',
      guestMac: '02:00:00:00:00:01',
      guestCidr: '10.200.0.5/24',
    },
  };
  const options = {
    qmpSocket: '/state/vms/vm-1/qmp.sock',
    pidFile: '/state/vms/vm-1/qemu.pid',
    binary: 'qemu-system-x86_64',
  };
  const tcg = qemuArgv(spec, { ...options, accel: 'tcg', tscKhz: 2_100_000 });
  const after = (flag: string, argv = tcg) => argv[argv.indexOf(flag) + 1];
  assert.equal(after('-M'), 'microvm');
  assert.equal(after('-accel'), 'tcg,thread=multi');
  assert.equal(after('-kernel'), '/k/vmlinuz', 'qemu boots the bzImage');
  assert.equal(after('-initrd'), '/k/initrd.img');
  assert.equal(
    after('-append'),
    'console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1 ip=10.200.0.5::10.200.0.1:255.255.255.0:kindling-1:eth0:off quiet tsc_early_khz=2100000',
  );
  assert.equal(
    after('-drive'),
    'id=root,file=/state/vms/vm-1/root,,fs.ext4,format=raw,if=none',
    'commas escaped',
  );
  assert.ok(tcg.includes('virtio-blk-device,drive=root'));
  assert.equal(after('-netdev'), 'tap,id=n0,ifname=tap0,script=no,downscript=no');
  assert.ok(tcg.includes('virtio-net-device,netdev=n0,mac=02:00:00:00:00:01'));
  assert.equal(after('-serial'), 'file:/state/vms/vm-1/console.log');
  assert.equal(after('-qmp'), 'unix:/state/vms/vm-1/qmp.sock,server=on,wait=off');
  assert.ok(tcg.includes('-daemonize') && tcg.includes('-no-reboot'));

  assert.ok(!tcg.some((arg) => arg.includes('transfer')), 'no transfer disk unless the VM has one');
  const withTransfer = qemuArgv({ ...spec, transferDiskPath: '/state/vms/vm-1/transfer.img' }, { ...options, accel: 'tcg' });
  const drives = withTransfer.flatMap((arg, i) => (withTransfer[i - 1] === '-drive' || withTransfer[i - 1] === '-device' ? [arg] : []));
  assert.deepEqual(
    drives.filter((d) => d.includes('drive=') || d.startsWith('id=')),
    ['id=root,file=/state/vms/vm-1/root,,fs.ext4,format=raw,if=none', 'virtio-blk-device,drive=root', 'id=transfer,file=/state/vms/vm-1/transfer.img,format=raw,if=none,readonly=on', 'virtio-blk-device,drive=transfer'],
    'the transfer disk is read-only and comes after the root disk',
  );

  const kvm = qemuArgv(spec, { ...options, accel: 'kvm', tscKhz: 2_100_000 });
  assert.equal(after('-accel', kvm), 'kvm');
  assert.equal(after('-cpu', kvm), 'host');
  assert.ok(!after('-append', kvm)!.includes('tsc_early_khz'), 'KVM guests calibrate their own TSC');
});

test('cleanup reaps a qemu the vmm never recorded (found by its pid file and -name), and nothing else', async (t) => {
  const runDir = await mkdtemp(join(tmpdir(), 'kindling-test-orphan-'));
  const children: ChildProcess[] = [];
  t.after(async () => {
    children.forEach((c) => c.kill('SIGKILL'));
    await rm(runDir, { recursive: true, force: true });
  });
  // Stand-ins for qemu: any process whose argv carries "-name kindling-<vm id>".
  const fake = (name: string) => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '-name', name], {
      stdio: 'ignore',
    });
    children.push(child);
    return child;
  };
  const driver = new QemuDriver({ acceleration: new AccelerationProbe('tcg') });

  const other = fake('kindling-vm-other');
  await writeFile(join(runDir, 'qemu.pid'), `${other.pid}\n`);
  await driver.cleanup(undefined, { vmId: 'vm-orphan', runDir });
  assert.equal(
    await processStartTime(other.pid!).then(Boolean),
    true,
    'a process of another VM is left alone',
  );

  const orphan = fake('kindling-vm-orphan');
  await writeFile(join(runDir, 'qemu.pid'), `${orphan.pid}\n`);
  await writeFile(join(runDir, 'qmp.sock'), '');
  await driver.cleanup(undefined, { vmId: 'vm-orphan', runDir });
  assert.equal(await processStartTime(orphan.pid!), undefined, 'the orphan is killed');
  assert.deepEqual(await readdir(runDir), [], 'socket and pid file removed');
});
