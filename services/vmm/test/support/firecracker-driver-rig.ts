/**
 * A Firecracker driver wired to the stand-in binaries in a temp dir, with VM files, a v1-only cgroup
 * fixture (like this lab host) and optionally a netns of its own; everything removed after the test.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { defaultFirecrackerConfig, type FirecrackerConfig } from '../../src/adapters/firecracker/config.ts';
import { FirecrackerDriver } from '../../src/adapters/firecracker/driver.ts';
import type { VmLaunchSpec, VmProcessRef } from '../../src/ports/hypervisor.ts';
import { writeFakeBinaries } from './fake-binaries.ts';

export interface Rig {
  readonly work: string;
  readonly driver: FirecrackerDriver;
  readonly config: FirecrackerConfig;
  readonly spec: VmLaunchSpec;
  readonly cgroupRoot: string;
}

/** A temp dir with binaries, VM files, a v1-only cgroup fixture (like this host) and an optional netns. */
export async function rig(
  t: TestContext,
  options: {
    jailed: boolean;
    behaviour?: string;
    failOn?: string;
    config?: Partial<FirecrackerConfig>;
    netns?: boolean;
    apiVersion?: string;
    /** Install firecracker as a release does: the binary under this name, `firecracker` a symlink to it. */
    firecrackerReleaseName?: string;
  },
): Promise<Rig> {
  const work = await mkdtemp(join(tmpdir(), 'kindling-fc-drv-'));
  // The fake cannot chroot: the jailed uid must reach the jail through the host path.
  await chmod(work, 0o755);
  const cgroupRoot = join(work, 'cgroup');
  for (const dir of ['cpu', 'memory', 'unified']) await mkdir(join(cgroupRoot, dir), { recursive: true });
  await writeFile(join(cgroupRoot, 'unified', 'cgroup.controllers'), 'hugetlb\n');
  const procMounts = join(work, 'mounts');
  await writeFile(
    procMounts,
    [
      `cgroup ${cgroupRoot}/cpu cgroup rw,relatime,cpu 0 0`,
      `cgroup ${cgroupRoot}/memory cgroup rw,relatime,memory 0 0`,
      `cgroup2 ${cgroupRoot}/unified cgroup2 rw,relatime 0 0`,
    ].join('\n'),
  );
  const bins = await writeFakeBinaries(work, {
    firecracker: {
      FAKE_FC_BEHAVIOUR: options.behaviour ?? 'normal',
      FAKE_FC_FAIL_ON: options.failOn ?? '',
      FAKE_FC_VERSION: options.apiVersion ?? '1.16.1',
    },
    jailer: { FAKE_PROC_MOUNTS: procMounts, FAKE_JAILER_LOG_DIR: work },
  });
  if (options.firecrackerReleaseName !== undefined) {
    await rename(bins.firecracker, join(work, options.firecrackerReleaseName));
    await symlink(options.firecrackerReleaseName, bins.firecracker);
  }
  for (const file of ['vmlinux', 'initrd.img', 'rootfs.ext4']) await writeFile(join(work, file), file);
  const vmId = `vm-${Math.random().toString(16).slice(2, 10)}`;
  let network: VmLaunchSpec['network'];
  if (options.netns) {
    const name = `kindling-test-${vmId}`;
    execFileSync('ip', ['netns', 'add', name]);
    t.after(() => execFileSync('ip', ['netns', 'delete', name]));
    network = {
      netnsPath: `/var/run/netns/${name}`,
      tapName: 'tap0',
      guestMac: '02:fc:00:00:00:09',
      guestCidr: '10.200.0.9/24',
      gateway: '10.200.0.1',
    };
  }
  const config: FirecrackerConfig = {
    ...defaultFirecrackerConfig,
    firecrackerBinary: bins.firecracker,
    jailerBinary: bins.jailer,
    useJailer: options.jailed,
    chrootBase: join(work, 'j'),
    apiSocketTimeoutMs: 15_000,
    killGraceMs: 2_000,
    ...options.config,
  };
  const driver = new FirecrackerDriver(config, { procMountsPath: procMounts });
  const spec: VmLaunchSpec = {
    vmId,
    vcpus: 2,
    memoryMib: 256,
    kernel: { vmlinuxPath: join(work, 'vmlinux'), initrdPath: join(work, 'initrd.img') },
    kernelArgs: 'root=/dev/vda rw',
    rootfsPath: join(work, 'rootfs.ext4'),
    ...(network ? { network } : {}),
    runDir: join(work, 'run'),
    consoleLogPath: join(work, 'console.log'),
    guestMetadata: { vmId, hostname: vmId, authorizedKeys: ['ssh-ed25519 AAAA test'] },
  };
  await mkdir(spec.runDir, { recursive: true });
  t.after(async () => {
    await driver.cleanup(undefined, spec).catch(() => {});
    await rm(work, { recursive: true, force: true });
  });
  return { work, driver, config, spec, cgroupRoot };
}

/** Kills a launched VM even when the test fails half-way. */
export function killOnExit(
  t: TestContext,
  driver: FirecrackerDriver,
  spec: VmLaunchSpec,
  ref: VmProcessRef,
): void {
  t.after(() => driver.cleanup(ref, spec).catch(() => {}));
}

export async function consoleOf(spec: VmLaunchSpec): Promise<string> {
  return readFile(spec.consoleLogPath, 'utf8').catch(() => '');
}

/** Command lines of live (non-zombie) processes that mention text, read from /proc (no procps needed). */
export async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (cmdline.includes(text)) found.push(cmdline);
  }
  return found;
}
