/**
 * The whole driver against stand-in `jailer` and `firecracker` executables (test/support/fake-*):
 * create → start → stop through the jailer and without it, a 400 during configuration, a socket
 * that never appears, a Firecracker that dies at once, a guest that ignores Ctrl+Alt+Del, and
 * nothing left on the host after cleanup.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FirecrackerApiClient } from '../src/adapters/firecracker/api-client.ts';
import { isProcessAlive } from '../src/adapters/firecracker/vmm-process.ts';
import { parseFakeReport } from './support/fake-binaries.ts';
import { consoleOf, killOnExit, processesMentioning, rig } from './support/firecracker-driver-rig.ts';

const isRoot = process.getuid?.() === 0;
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('firecracker driver with stand-in binaries', () => {
  it('runs create → start → stop through the jailer and leaves nothing behind', async (t) => {
    if (!isRoot) return t.skip('needs root (jail ownership, uid drop)');
    const r = await rig(t, { jailed: true });
    const ref = await r.driver.launch(r.spec);
    killOnExit(t, r.driver, r.spec, ref);
    assert.equal(ref.driver, 'firecracker');
    assert.equal(ref.details.apiVersion, '1.16.1');
    assert.equal(ref.details.cgroupVersion, '1', 'v2 preferred, but the host has the controllers only in v1');
    assert.ok(await r.driver.isAlive(ref));
    const jailRoot = join(r.config.chrootBase, 'firecracker', r.spec.vmId, 'root');
    assert.equal(ref.details.apiSocket, join(jailRoot, 'run/firecracker.socket'));
    assert.equal((await stat(join(jailRoot, 'rootfs.ext4'))).uid, r.config.jailerUid);
    const argv = JSON.parse(await readFile(join(r.work, `${r.spec.vmId}.argv.json`), 'utf8')) as string[];
    assert.deepEqual(argv.slice(0, 10), [
      '--id',
      r.spec.vmId,
      '--exec-file',
      r.config.firecrackerBinary,
      '--uid',
      '10000',
      '--gid',
      '10000',
      '--chroot-base-dir',
      r.config.chrootBase,
    ]);
    assert.deepEqual(argv.slice(-3), ['--', '--api-sock', '/run/firecracker.socket']);
    const cpuDir = join(r.cgroupRoot, 'cpu', 'kindling', r.spec.vmId);
    assert.ok(await exists(cpuDir));
    assert.equal(await readFile(`${cpuDir}.cpu.cfs_quota_us`, 'utf8'), '200000');
    assert.equal(
      await readFile(
        join(r.cgroupRoot, 'memory', 'kindling', `${r.spec.vmId}.memory.limit_in_bytes`),
        'utf8',
      ),
      String((256 + 128) * 1024 * 1024),
    );

    const client = new FirecrackerApiClient(ref.details.apiSocket ?? '');
    const vmConfig = await client.getVmConfig().finally(() => client.close());
    assert.deepEqual(vmConfig['machine-config'], {
      vcpu_count: 2,
      mem_size_mib: 256,
      smt: false,
      track_dirty_pages: false,
    });
    assert.deepEqual(vmConfig['boot-source'], {
      kernel_image_path: '/vmlinux',
      initrd_path: '/initrd.img',
      boot_args: 'console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda rw',
    });
    assert.equal(vmConfig.drives?.[0]?.path_on_host, '/rootfs.ext4');

    assert.deepEqual(await r.driver.stop(ref, 10_000), { graceful: true });
    assert.equal(await r.driver.isAlive(ref), false);
    assert.equal(
      (await stat(r.spec.rootfsPath)).uid,
      0,
      'the rootfs is handed back to its owner after the stop',
    );
    const report = parseFakeReport(await consoleOf(r.spec));
    assert.ok(report, 'the fake printed its report');
    assert.deepEqual(report.violations, []);
    assert.deepEqual(
      report.requests.map((q) => `${q.method} ${q.path} ${q.status}`),
      [
        'GET /version 200',
        'PUT /logger 204',
        'PUT /metrics 204',
        'PUT /machine-config 204',
        'PUT /boot-source 204',
        'PUT /drives/rootfs 204',
        'PUT /actions 204',
        'GET / 200',
        'GET /vm/config 200',
        'PUT /actions 204',
      ],
    );
    assert.match(await consoleOf(r.spec), /Linux version fake/);

    await r.driver.cleanup(ref, r.spec);
    assert.equal(await exists(join(r.config.chrootBase, 'firecracker', r.spec.vmId)), false, 'jail removed');
    assert.equal(await exists(cpuDir), false, 'cpu cgroup removed');
    assert.equal(
      await exists(join(r.cgroupRoot, 'memory', 'kindling', r.spec.vmId)),
      false,
      'memory cgroup removed',
    );
    assert.equal(await exists(r.spec.rootfsPath), true, 'the VM rootfs itself belongs to the lifecycle core');
  });

  it('follows a daemonizing jailer to Firecracker through its pid file', async (t) => {
    if (!isRoot) return t.skip('needs root (jail ownership, uid drop)');
    const r = await rig(t, { jailed: true, config: { daemonize: true } });
    const ref = await r.driver.launch(r.spec);
    killOnExit(t, r.driver, r.spec, ref);
    const pidFile = join(r.config.chrootBase, 'firecracker', r.spec.vmId, 'root', 'firecracker.pid');
    assert.equal(String(ref.pid), (await readFile(pidFile, 'utf8')).trim());
    assert.ok(await r.driver.isAlive(ref));
    assert.deepEqual(await r.driver.stop(ref, 10_000), { graceful: true });
    await r.driver.cleanup(ref, r.spec);
    assert.equal(await exists(join(r.config.chrootBase, 'firecracker', r.spec.vmId)), false);
  });

  it('jails a firecracker installed as a symlink under the canonical exec file name, as the jailer does', async (t) => {
    if (!isRoot) return t.skip('needs root (jail ownership, uid drop)');
    const release = 'firecracker-v1.16.1-x86_64';
    const r = await rig(t, { jailed: true, firecrackerReleaseName: release });
    const ref = await r.driver.launch(r.spec);
    killOnExit(t, r.driver, r.spec, ref);
    const jailDir = join(r.config.chrootBase, release, r.spec.vmId);
    assert.equal(ref.details.apiSocket, join(jailDir, 'root/run/firecracker.socket'));
    assert.equal(String(ref.pid), (await readFile(join(jailDir, 'root', `${release}.pid`), 'utf8')).trim());
    const argv = JSON.parse(await readFile(join(r.work, `${r.spec.vmId}.argv.json`), 'utf8')) as string[];
    assert.equal(argv[argv.indexOf('--exec-file') + 1], join(r.work, release));
    assert.ok(await r.driver.isAlive(ref));
    assert.deepEqual(await r.driver.stop(ref, 10_000), { graceful: true });
    await r.driver.cleanup(undefined, r.spec);
    assert.equal(
      await exists(jailDir),
      false,
      'cleanup without a record finds the jail by the canonical name',
    );
  });

  it('refuses an exec file the jailer would refuse (its name lacks "firecracker"), creating nothing', async (t) => {
    const r = await rig(t, { jailed: true, firecrackerReleaseName: 'fc-v1.16.1' });
    await assert.rejects(
      r.driver.launch(r.spec),
      /--binary-firecracker .*\/firecracker \(resolves to .*\/fc-v1\.16\.1\): the jailer refuses an exec file whose name does not contain "firecracker"/,
    );
    assert.equal(await exists(r.config.chrootBase), false);
  });

  for (const apiVersion of ['1.16.1', '1.7.0']) {
    it(`runs without the jailer inside the VM netns, with network and MMDS (API v${apiVersion})`, async (t) => {
      if (!isRoot) return t.skip('needs root (ip netns add)');
      const r = await rig(t, { jailed: false, netns: true, apiVersion });
      const ref = await r.driver.launch(r.spec);
      killOnExit(t, r.driver, r.spec, ref);
      assert.equal(ref.details.mode, 'direct');
      const netnsOfVmm = execFileSync('ip', ['netns', 'identify', String(ref.pid)], {
        encoding: 'utf8',
      }).trim();
      assert.equal(netnsOfVmm, `kindling-test-${r.spec.vmId}`);
      assert.deepEqual(await r.driver.stop(ref, 10_000), { graceful: true });
      const report = parseFakeReport(await consoleOf(r.spec));
      assert.deepEqual(report?.violations, []);
      assert.deepEqual(report?.mmds, r.spec.guestMetadata);
      assert.ok(report?.requests.some((q) => q.path === '/network-interfaces/eth0' && q.status === 204));
      assert.equal(ref.details.apiVersion, apiVersion);
      await r.driver.cleanup(ref, r.spec);
      assert.equal(await exists(join(r.spec.runDir, 'firecracker.socket')), false);
    });
  }

  it('replaces an API socket left by a crashed Firecracker, and refuses one that still answers', async (t) => {
    const r = await rig(t, { jailed: false });
    const socketPath = join(r.spec.runDir, 'firecracker.socket');
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(socketPath, resolve));
    const live = await r.driver.launch(r.spec).then(
      () => 'launched',
      (error: Error) => error.message,
    );
    assert.match(live, /firecracker\.socket already answers: another Firecracker may run VM/);
    // A crash leaves the socket path behind with nothing listening on it (closing unlinks it).
    await new Promise<void>((resolve) => stale.close(() => resolve()));
    await writeFile(socketPath, '');
    const ref = await r.driver.launch(r.spec);
    killOnExit(t, r.driver, r.spec, ref);
    assert.deepEqual(await r.driver.stop(ref, 10_000), { graceful: true });
  });

  it('kills a guest that ignores Ctrl+Alt+Del once the timeout passes', async (t) => {
    const r = await rig(t, { jailed: false, behaviour: 'ignore-ctrl-alt-del' });
    const ref = await r.driver.launch(r.spec);
    killOnExit(t, r.driver, r.spec, ref);
    assert.deepEqual(await r.driver.stop(ref, 300), { graceful: false });
    assert.equal(await r.driver.isAlive(ref), false);
    assert.deepEqual(parseFakeReport(await consoleOf(r.spec))?.violations, [], 'SIGTERM let the fake report');
  });

  it('surfaces a 400 during configuration naming the request, and cleans up', async (t) => {
    if (!isRoot) return t.skip('needs root (jail ownership)');
    const r = await rig(t, { jailed: true, failOn: 'PUT /drives/rootfs' });
    await assert.rejects(r.driver.launch(r.spec), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'FAILED_PRECONDITION');
      assert.match(
        error.message,
        /^firecracker API PUT \/drives\/rootfs failed with HTTP 400: injected failure for PUT \/drives\/rootfs/,
      );
      return true;
    });
    assert.equal(await exists(join(r.config.chrootBase, 'firecracker', r.spec.vmId)), false);
    assert.equal(await exists(join(r.cgroupRoot, 'cpu', 'kindling', r.spec.vmId)), false);
  });

  it('times out cleanly when the API socket never appears', async (t) => {
    if (!isRoot) return t.skip('needs root (jail ownership)');
    const r = await rig(t, { jailed: true, behaviour: 'no-socket', config: { apiSocketTimeoutMs: 2_000 } });
    await assert.rejects(r.driver.launch(r.spec), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DEADLINE_EXCEEDED');
      assert.match(
        error.message,
        new RegExp(
          `jailer --id ${r.spec.vmId} did not open its API socket .*/root/run/firecracker\\.socket within 2000 ms`,
        ),
      );
      return true;
    });
    assert.equal(await exists(join(r.config.chrootBase, 'firecracker', r.spec.vmId)), false, 'jail removed');
    assert.equal(await exists(join(r.cgroupRoot, 'cpu', 'kindling', r.spec.vmId)), false, 'cgroups removed');
    assert.deepEqual(await processesMentioning(r.spec.vmId), [], 'no process of the VM left');
  });

  it('reports a Firecracker that dies at once with its last output', async (t) => {
    const r = await rig(t, { jailed: false, behaviour: 'exit-at-once' });
    await assert.rejects(r.driver.launch(r.spec), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'UNAVAILABLE');
      assert.match(
        error.message,
        /never opened its API socket .*exited \(code 1\); last output: firecracker: cannot open \/dev\/kvm/,
      );
      return true;
    });
    assert.equal(await exists(join(r.spec.runDir, 'firecracker.log')), false);
  });

  it('recognises its Firecracker by whole arguments, so VM build-1 is not VM build-10', async (t) => {
    // Stands in for `/srv/jailer/firecracker/build-10/root/firecracker --id build-10 ...`.
    const child = spawn('/bin/sh', ['-c', 'sleep 60; :', '--id', 'build-10'], {
      argv0: '/firecracker',
      detached: true,
      stdio: 'ignore',
    });
    t.after(() => process.kill(-(child.pid ?? 0), 'SIGKILL'));
    await once(child, 'spawn');
    const pid = child.pid ?? -1;
    assert.equal(await isProcessAlive(pid, ['firecracker', 'build-10']), true);
    assert.equal(await isProcessAlive(pid, ['firecracker', 'build-1']), false);
    assert.equal(await isProcessAlive(pid, ['firecracker-v1.16.1-x86_64', 'build-10']), false);
  });

  it('refuses to start without the binaries, naming the setting, and creates nothing', async (t) => {
    const r = await rig(t, { jailed: true, config: { jailerBinary: '/nonexistent/jailer' } });
    await assert.rejects(r.driver.launch(r.spec), /--binary-jailer \/nonexistent\/jailer does not exist/);
    assert.equal(await exists(r.config.chrootBase), false);
  });
});
