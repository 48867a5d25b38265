/**
 * One VM's life, phase by phase, each beside a baseline measured in the same run:
 *   rootfs copy      vmm (Ext4Disk.copy)           vs  cp --sparse=always
 *   injection        guest files (Ext4Disk)        vs  one hand-written debugfs -w script writing them
 *   CNI ADD          bridge+host-local+firewall+kindling-tap  vs  the same chain without firewall
 *   boot→SSH-ready   StartVm (vmm, qemu driver)    vs  qemu's microvm command line typed by hand
 *   graceful stop    StopVm (ACPI power button)    vs  `poweroff` over SSH until qemu exits
 *   commit           CommitVm (take the stopped VM's disk, strip identity, digest)  vs  cp --sparse=always
 * Needs root, qemu, CNI plugins and the cached Debian base OS (built on first use).
 * Usage: npm run bench:vm
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateSshKeyPair } from '@kindling/runtime';
import { runCommand } from '../services/vmm/src/adapters/exec/run-command.ts';
import { E2fsprogsExt4Disk } from '../services/vmm/src/adapters/ext4/ext4-disk.ts';
import { BLOCK_BYTES, blocksWithData } from '../services/vmm/src/adapters/fs/block-list-digest.ts';
import { registerBaseOsBuild } from '../services/vmm/src/adapters/fs/base-os-cache.ts';
import { hostTscKhz } from '../services/vmm/src/adapters/qemu/acceleration.ts';
import { isSameProcess, processStartTime } from '../services/vmm/src/adapters/qemu/host-process.ts';
import { SshKeygenHostKeys } from '../services/vmm/src/adapters/ssh-keygen/host-key.ts';
import { ensureDebianBase } from '../services/vmm/src/baseos/build.ts';
import { emptyImageMetadata, type ImageRecord } from '../services/vmm/src/domain/image.ts';
import { guestFiles } from '../services/vmm/src/domain/guest-contract.ts';
import { CniLab } from '../services/vmm/test/support/cni-lab.ts';
import {
  makeTempDir,
  NetnsForwarder,
  removeDir,
  sshConnect,
  sshExec,
  startTestVmm,
} from '../services/vmm/test/support/vmm-harness.ts';

const rows: [string, number, number][] = [];
const seconds = (ms: number) => (ms / 1000).toFixed(3).padStart(8);
async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
function report(phase: string, ours: number, baseline: number, baselineName: string): void {
  rows.push([phase, ours, baseline]);
  console.log(
    `${phase.padEnd(16)} kindling ${seconds(ours)} s   ${baselineName.padEnd(34)} ${seconds(baseline)} s   ratio ${(ours / baseline).toFixed(2)}`,
  );
}

const build = await ensureDebianBase({ progress: () => undefined });
const dir = await makeTempDir('bench-vm');
const lab = await CniLab.create();
const disk = new E2fsprogsExt4Disk();
const keys = generateSshKeyPair();
let vmm: Awaited<ReturnType<typeof startTestVmm>> | undefined;
try {
  await lab.addNetwork({ name: 'bench-vms', cniVersion: '1.0.0', subnetOctet: 88 });
  await lab.addNetwork({
    name: 'bench-minimal',
    cniVersion: '1.0.0',
    subnetOctet: 89,
    plugins: [
      {
        type: 'bridge',
        bridge: 'ktbr89',
        isGateway: true,
        ipam: { type: 'host-local', subnet: '10.231.89.0/24', dataDir: lab.dataDir },
      },
      { type: 'kindling-tap' },
    ],
  });

  // Copy: five rounds in alternating order, medians: page cache and the neighbours' I/O favour neither.
  await runCommand('cp', ['--sparse=always', build.rootfs, join(dir, 'warm.ext4')]);
  const ours: number[] = [];
  const cp: number[] = [];
  for (let round = 0; round < 5; round++) {
    const target = (who: string) => join(dir, round === 0 ? `${who}-0.ext4` : `${who}-n.ext4`);
    const runOurs = async () => {
      await rm(target('ours'), { force: true });
      ours.push((await timed(() => disk.copy(build.rootfs, target('ours'))))[1]);
    };
    const runCp = async () => {
      await rm(target('cp'), { force: true });
      cp.push((await timed(() => runCommand('cp', ['--sparse=always', build.rootfs, target('cp')])))[1]);
    };
    if (round % 2 === 0) await runOurs().then(runCp);
    else await runCp().then(runOurs);
  }
  report('rootfs copy', median(ours), median(cp), 'cp --sparse=always (median of 5)');

  const image = join(dir, 'ours-0.ext4');
  const hostKey = await new SshKeygenHostKeys().generate('bench');
  const files = guestFiles({
    vmId: 'bench',
    hostname: 'bench',
    authorizedKeys: [keys.public],
    hostKey,
    image: { base: true } as ImageRecord,
  });
  const [, inject] = await timed(() => disk.writeFiles(image, files.directories, files.files));
  const handImage = join(dir, 'ours-n.ext4');
  const script = files.files.map((f, i) => `write ${join(dir, `f${i}`)} ${f.path}\n`).join('');
  await Promise.all(files.files.map((f, i) => writeFile(join(dir, `f${i}`), f.content)));
  const [, byHand] = await timed(() =>
    runCommand('debugfs', ['-w', '-f', '-', handImage], {
      input: `mkdir /etc/kindling\nmkdir /root/.ssh\n${script}`,
    }),
  );
  report('injection', inject, byHand, 'one debugfs -w script by hand');

  const netns = (name: string) => lab.createVmNetns(name);
  const full = lab.network('bench-vms');
  const minimal = lab.network('bench-minimal');
  const nsFull = await netns('full');
  const nsMin = await netns('min');
  const [, add] = await timed(() => full.attach('bench-full', nsFull));
  const [, addMin] = await timed(() => minimal.attach('bench-min', nsMin));
  report('CNI ADD', add, addMin, 'same chain without firewall');
  await full.detach('bench-full', nsFull);
  await minimal.detach('bench-min', nsMin);
  for (const name of ['ours-n', 'cp-0', 'cp-n', 'warm']) await rm(join(dir, `${name}.ext4`));

  // Boot and stop through the vmm, then the same disk by hand with qemu's microvm command line.
  vmm = await startTestVmm({
    stateDir: join(dir, 'state'),
    cniConfDir: lab.confDir,
    cniCacheDir: lab.cacheDir,
    cniHostNetns: lab.hostNetnsPath,
    stopTimeout: '120s',
  });
  await registerBaseOsBuild(vmm.running.catalog, build.dir, build.imageJson);
  const { host, catalog } = vmm.running;
  const created = await host.createVm({
    vmId: 'bench-vm',
    image: 'debian:bookworm',
    vcpus: 2,
    memoryMib: 1024,
    diskSizeBytes: 0,
    network: 'bench-vms',
    authorizedKeys: [keys.public],
    hostname: '',
    extraKernelArgs: '',
    buildId: '',
    labels: {},
  });
  const forwarder = await NetnsForwarder.start(lab.hostNetns, join(dir, 'ssh.sock'), {
    host: created.network!.guestIp,
    port: 22,
  });
  const sshReady = async () =>
    (await sshConnect(forwarder, keys.private, created.hostKeyPublic, 600_000)).end();
  const [, boot] = await timed(async () => {
    await host.startVm('bench-vm');
    await sshReady();
  });
  const [stopped, stop] = await timed(() => host.stopVm('bench-vm'));

  const vmDisk = created.rootfsPath;
  const kernel = build.kernel;
  const net = created.network!;
  const mask = net.netmask;
  const tsc = await hostTscKhz();
  const pidFile = join(dir, 'raw.pid');
  const rawArgs = [
    'netns',
    'exec',
    created.netnsName!,
    'qemu-system-x86_64',
    '-M',
    'microvm',
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    'max',
    '-smp',
    '2',
    '-m',
    '1024',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    kernel.vmlinuz,
    '-initrd',
    kernel.initrd,
    '-append',
    `console=ttyS0 root=/dev/vda rw net.ifnames=0 ip=${net.guestIp}:::${mask}::eth0:off panic=-1${tsc ? ` tsc_early_khz=${tsc}` : ''}`,
    '-drive',
    `id=root,file=${vmDisk},format=raw,if=none`,
    '-device',
    'virtio-blk-device,drive=root',
    '-netdev',
    `tap,id=n0,ifname=${net.tapName},script=no,downscript=no`,
    '-device',
    `virtio-net-device,netdev=n0,mac=${net.guestMac}`,
    '-serial',
    `file:${join(dir, 'raw-console.log')}`,
    '-pidfile',
    pidFile,
    '-daemonize',
  ];
  const [, rawBoot] = await timed(async () => {
    await runCommand('ip', rawArgs);
    await sshReady();
  });
  report('boot→SSH-ready', boot, rawBoot, 'qemu by hand (microvm line)');

  const rawPid = Number((await readFile(pidFile, 'utf8')).trim());
  const rawStart = await processStartTime(rawPid);
  const [, rawStop] = await timed(async () => {
    const ssh = await sshConnect(forwarder, keys.private, created.hostKeyPublic, 60_000);
    await sshExec(ssh, 'systemctl poweroff').catch(() => undefined);
    ssh.end();
    while (await isSameProcess(rawPid, rawStart)) await sleep(50);
  });
  report('graceful stop', stop, rawStop, '`poweroff` over SSH → qemu exit');
  if (!stopped.graceful) console.log(`note: StopVm was not graceful: ${stopped.record.reason}`);
  await forwarder.stop();

  // cp once before and once after CommitVm (mean), so neither side gets the warmer page cache; a
  // sync before each, so neither competes with the writeback of the one before.
  const cpOnce = async (name: string) => {
    await runCommand('sync', []);
    return (await timed(() => runCommand('cp', ['--sparse=always', vmDisk, join(dir, name)])))[1];
  };
  const cpBefore = await cpOnce('cp-commit-1.ext4');
  const timings: Record<string, number> = {};
  await runCommand('sync', []);
  const [, commit] = await timed(() =>
    catalog.commitVm('bench-vm', 'bench:one', emptyImageMetadata(), { timings }),
  );
  const cpCommit = (cpBefore + (await cpOnce('cp-commit-2.ext4'))) / 2;
  report('commit', commit, cpCommit, 'cp --sparse=always');
  // CommitVm's own phases: taking the disk (a hard link), then the identity strip and the digest (BLAKE3
  // of the 4 MiB blocks holding data) at once: the blocks are hashed while the strip runs, and the few
  // it wrote hashed again after (stripAndDigestMs); with a shrink, strip, shrink and digest one by one.
  const { size, blocks } = await stat(vmDisk);
  const hashed = ((await blocksWithData(vmDisk, size))?.length ?? size / BLOCK_BYTES) * BLOCK_BYTES;
  const phases = Object.entries(timings).map(([name, ms]) => `${name.replace(/Ms$/, '')} ${ms} ms`).join(', ');
  console.log(
    `(commit phases: ${phases}: the ${(size / 2 ** 30).toFixed(1)} GiB file holds ${((blocks * 512) / 2 ** 20).toFixed(0)} MiB, in 4 MiB blocks that make ${(hashed / 2 ** 20).toFixed(0)} MiB to read and hash)`,
  );
  await host.deleteVm('bench-vm');
} finally {
  // The baseline qemu is ours alone (daemonized, outside the vmm): never leave it running.
  const rawPid = Number(await readFile(join(dir, 'raw.pid'), 'utf8').catch(() => ''));
  if (rawPid > 0 && (await readFile(`/proc/${rawPid}/cmdline`, 'utf8').catch(() => '')).includes(dir)) {
    process.kill(rawPid, 'SIGKILL');
  }
  await vmm?.stop();
  await lab.cleanup();
  await removeDir(dir);
}

console.log('');
for (const [phase, ours, baseline] of rows) {
  console.log(
    `${phase}: ${seconds(ours).trim()} s vs ${seconds(baseline).trim()} s, ratio ${(ours / baseline).toFixed(2)}`,
  );
}
