/**
 * The driver against real `jailer` and `firecracker` binaries. Runs only when
 * KINDLING_FIRECRACKER_BIN and KINDLING_JAILER_BIN point at them (same release), as root, with
 * /dev/kvm, and a guest kernel (ELF vmlinux) and rootfs: KINDLING_FIRECRACKER_KERNEL and
 * KINDLING_FIRECRACKER_ROOTFS, else the newest base-OS build in the kindling cache.
 */
import assert from 'node:assert/strict';
import { access, chmod, copyFile, mkdtemp, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { FirecrackerApiClient } from '../src/adapters/firecracker/api-client.ts';
import { defaultFirecrackerConfig, type FirecrackerConfig } from '../src/adapters/firecracker/config.ts';
import { FirecrackerDriver } from '../src/adapters/firecracker/driver.ts';
import type { VmLaunchSpec } from '../src/ports/hypervisor.ts';
import { processesMentioning } from './support/firecracker-driver-rig.ts';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** The newest base-OS build in the cache holding a vmlinux and a rootfs. */
async function cachedGuest(): Promise<{ kernel: string; rootfs: string } | undefined> {
  const dir = join(process.env.KINDLING_CACHE_DIR ?? '/var/cache/kindling', 'baseos');
  const builds = await readdir(dir).catch(() => [] as string[]);
  const found: { kernel: string; rootfs: string; mtime: number }[] = [];
  for (const b of builds) {
    const kernel = join(dir, b, 'kernel', 'vmlinux');
    const rootfs = join(dir, b, 'rootfs.ext4');
    if ((await exists(kernel)) && (await exists(rootfs)))
      found.push({ kernel, rootfs, mtime: (await stat(rootfs)).mtimeMs });
  }
  return found.sort((a, b) => b.mtime - a.mtime)[0];
}

async function whyNotRunnable(): Promise<string | undefined> {
  const fc = process.env.KINDLING_FIRECRACKER_BIN;
  const jailer = process.env.KINDLING_JAILER_BIN;
  if (!fc || !jailer)
    return 'needs KINDLING_FIRECRACKER_BIN and KINDLING_JAILER_BIN pointing at real firecracker and jailer binaries';
  if (!(await exists(fc)) || !(await exists(jailer)))
    return `KINDLING_FIRECRACKER_BIN=${fc} or KINDLING_JAILER_BIN=${jailer} does not exist`;
  if (process.getuid?.() !== 0) return 'needs root (the jailer runs as root)';
  if (!(await exists('/dev/kvm'))) return 'needs /dev/kvm';
  if (
    !(process.env.KINDLING_FIRECRACKER_KERNEL && process.env.KINDLING_FIRECRACKER_ROOTFS) &&
    !(await cachedGuest())
  ) {
    return 'needs a guest: KINDLING_FIRECRACKER_KERNEL (ELF vmlinux) and KINDLING_FIRECRACKER_ROOTFS, or a base-OS build in the kindling cache';
  }
  return undefined;
}

it('jails a real Firecracker, configures, reads back, starts and stops a VM, leaving nothing behind', async (t) => {
  const reason = await whyNotRunnable();
  if (reason !== undefined) {
    console.log(`skipped the real-binary firecracker test: ${reason}`);
    return t.skip(reason);
  }
  const guest =
    process.env.KINDLING_FIRECRACKER_KERNEL && process.env.KINDLING_FIRECRACKER_ROOTFS
      ? { kernel: process.env.KINDLING_FIRECRACKER_KERNEL, rootfs: process.env.KINDLING_FIRECRACKER_ROOTFS }
      : ((await cachedGuest()) as { kernel: string; rootfs: string });
  const work = await mkdtemp(join(tmpdir(), 'kindling-fc-real-'));
  const chrootBase = await mkdtemp('/tmp/kfc-');
  await chmod(chrootBase, 0o755); // like /srv/jailer
  const config: FirecrackerConfig = {
    ...defaultFirecrackerConfig,
    firecrackerBinary: process.env.KINDLING_FIRECRACKER_BIN ?? '',
    jailerBinary: process.env.KINDLING_JAILER_BIN ?? '',
    chrootBase,
    parentCgroup: 'kindling-test',
  };
  const driver = new FirecrackerDriver(config);
  const vmId = `kindling-test-${process.pid}`;
  const spec: VmLaunchSpec = {
    vmId,
    vcpus: 1,
    memoryMib: 256,
    kernel: { vmlinuxPath: guest.kernel },
    kernelArgs: 'root=/dev/vda rw',
    rootfsPath: join(work, 'rootfs.ext4'),
    runDir: join(work, 'run'),
    consoleLogPath: join(work, 'console.log'),
  };
  await copyFile(guest.rootfs, spec.rootfsPath);
  t.after(async () => {
    await driver.cleanup(undefined, spec).catch(() => {});
    await rm(work, { recursive: true, force: true });
    await rm(chrootBase, { recursive: true, force: true });
  });

  const ref = await driver.launch(spec);
  t.after(() => driver.cleanup(ref, spec).catch(() => {}));
  assert.match(ref.details.apiVersion ?? '', /^\d+\.\d+\.\d+/);
  const client = new FirecrackerApiClient(ref.details.apiSocket ?? '');
  try {
    const vmConfig = await client.getVmConfig();
    assert.equal(vmConfig['machine-config']?.vcpu_count, 1);
    assert.equal(vmConfig['machine-config']?.mem_size_mib, 256);
    assert.equal(vmConfig['boot-source']?.kernel_image_path, '/vmlinux');
    assert.equal(vmConfig['boot-source']?.boot_args, `${config.kernelArgs} root=/dev/vda rw`);
    assert.deepEqual(
      vmConfig.drives?.map((d) => [d.drive_id, d.path_on_host, d.is_root_device, d.is_read_only]),
      [['rootfs', '/rootfs.ext4', true, false]],
    );
    assert.equal((await client.describeInstance()).state, 'Running');
  } finally {
    await client.close();
  }
  await driver.stop(ref, 30_000);
  assert.equal(await driver.isAlive(ref), false);
  await driver.cleanup(ref, spec);
  // <chroot base>/<canonical exec file name>/<id>: the name is the binary's, symlinks resolved.
  assert.equal(dirname(dirname(ref.details.jailDir ?? '')), chrootBase);
  assert.equal(await exists(ref.details.jailDir ?? ''), false, 'jail removed');
  for (const dir of JSON.parse(ref.details.cgroupDirs ?? '[]') as string[]) {
    assert.equal(await exists(dir), false, `${dir} removed`);
    await rmdir(dirname(dir)).catch(() => {}); // the test's own parent cgroup
  }
  assert.deepEqual(await processesMentioning(vmId), [], 'no process of the VM left');
});
