/**
 * The guest contract end to end, once: the cached Debian base booted under qemu TCG on a CNI network in
 * test-owned namespaces, with guest.json, authorized_keys and a host key written into the image by
 * debugfs -w. SSH in with the host key pinned, see hostname, network and the entrypoint service, power
 * off, and read what the entrypoint wrote from the consistent image.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ensureDebianBase } from '../src/baseos/build.ts';
import { baseOsUnavailable, commandMissing, debugfs, injectFiles } from './support/baseos-image.ts';
import { CniLab, cniLabUnavailable } from './support/cni-lab.ts';

function unavailable(): string | false {
  const base = baseOsUnavailable();
  if (base) return base;
  const cni = cniLabUnavailable();
  if (cni) return cni;
  for (const cmd of ['qemu-system-x86_64', 'ssh', 'ssh-keygen'])
    if (commandMissing(cmd)) return `needs ${cmd}`;
  return false;
}

/** Under TCG the guest cannot calibrate its TSC on a busy host and hangs early; tell it the host's rate. */
async function hostTscKhz(): Promise<number | undefined> {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

/** Presses the ACPI power button through QMP, as the vmm's graceful stop does. */
async function qmpPowerdown(socket: string): Promise<void> {
  const conn = createConnection(socket);
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    let step = 0;
    conn.on('error', reject);
    conn.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl)) as {
          QMP?: unknown;
          return?: unknown;
          error?: { desc: string };
        };
        buffered = buffered.slice(nl + 1);
        if (msg.error) return reject(new Error(`QMP: ${msg.error.desc}`));
        if (msg.QMP) conn.write('{"execute":"qmp_capabilities"}\n');
        else if (msg.return !== undefined && step++ === 0) conn.write('{"execute":"system_powerdown"}\n');
        else if (msg.return !== undefined) resolve();
      }
    });
  });
  conn.destroy();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the Debian base boots and applies the guest contract', { skip: unavailable() }, () => {
  it(
    'boots under qemu TCG on a CNI network; SSH with a pinned host key sees what guest.json asked for',
    { timeout: 600_000 },
    async (t) => {
      const build = await ensureDebianBase();
      // Undo in reverse order of creation, whatever fails on the way.
      const cleanups: (() => Promise<unknown>)[] = [];
      t.after(async () => {
        for (const undo of cleanups.reverse())
          await undo().catch((e: unknown) => t.diagnostic(`cleanup: ${String(e)}`));
      });
      const dir = await mkdtemp(path.join(tmpdir(), 'kindling-test-boot-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const lab = await CniLab.create();
      cleanups.push(() => lab.cleanup());
      await lab.addNetwork({ name: 'kt-boot', cniVersion: '1.0.0', subnetOctet: 21 });
      const vmNs = await lab.createVmNetns('boot');
      const net = lab.network('kt-boot');
      const attachment = await net.attach('vm-boot', vmNs);
      cleanups.push(() => net.detach('vm-boot'));

      const image = path.join(dir, 'rootfs.ext4');
      execFileSync('cp', ['--sparse=always', build.rootfs, image]);
      const keygen = (file: string, comment: string): Buffer =>
        execFileSync('ssh-keygen', [
          '-q',
          '-t',
          'ed25519',
          '-N',
          '',
          '-C',
          comment,
          '-f',
          path.join(dir, file),
        ]);
      keygen('id', 'kindling-test');
      keygen('host', 'vm-boot');
      const clientKey = (await readFile(path.join(dir, 'id.pub'), 'utf8')).trim();
      const hostPub = (await readFile(path.join(dir, 'host.pub'), 'utf8')).trim();
      const guest = {
        vmId: 'vm-boot',
        hostname: 'kindling-boot-test',
        network: {
          address: attachment.guestCidr,
          gateway: attachment.gateway,
          mtu: attachment.mtu ?? 1500,
          nameservers: [],
        },
        authorizedKeys: [clientKey],
        image: {
          entrypoint: ['/bin/sh', '-c'],
          cmd: ['echo "$GREETING from $(id -un) in $(pwd)" > /var/tmp/entrypoint.out; exec sleep infinity'],
          env: ['GREETING=hello 100% world'],
          user: 'nobody',
          workingDir: '/var/tmp',
          stopSignal: 'SIGTERM',
        },
      };
      injectFiles(
        image,
        [
          { path: '/etc/kindling/guest.json', content: JSON.stringify(guest), mode: 0o644 },
          { path: '/root/.ssh/authorized_keys', content: `${clientKey}\n`, mode: 0o600 },
          {
            path: '/etc/ssh/ssh_host_ed25519_key',
            content: await readFile(path.join(dir, 'host')),
            mode: 0o600,
          },
          { path: '/etc/ssh/ssh_host_ed25519_key.pub', content: `${hostPub}\n`, mode: 0o644 },
        ],
        dir,
        [
          { path: '/etc/kindling', mode: 0o755 },
          { path: '/root/.ssh', mode: 0o700 },
        ],
      );

      const tsc = await hostTscKhz();
      // No ip= on the command line: the boot unit must take the network from guest.json.
      const append = `console=ttyS0 root=/dev/vda rw net.ifnames=0 panic=-1${tsc ? ` tsc_early_khz=${tsc}` : ''}`;
      const consoleLog = path.join(dir, 'console.log');
      const qemu = spawn(
        'ip',
        [
          'netns',
          'exec',
          path.basename(vmNs),
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
          '-nographic',
          '-no-reboot',
          '-kernel',
          build.kernel.vmlinuz,
          '-initrd',
          build.kernel.initrd,
          '-append',
          append,
          '-drive',
          `id=root,file=${image},format=raw,if=none`,
          '-device',
          'virtio-blk-device,drive=root',
          '-netdev',
          `tap,id=n0,ifname=${attachment.tapName},script=no,downscript=no`,
          '-device',
          `virtio-net-device,netdev=n0,mac=${attachment.guestMac}`,
          '-serial',
          `file:${consoleLog}`,
          '-qmp',
          `unix:${path.join(dir, 'qmp.sock')},server=on,wait=off`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let qemuErr = '';
      qemu.stderr.on('data', (d: Buffer) => (qemuErr += d.toString()));
      const pid = qemu.pid!;
      cleanups.push(async () => {
        if (alive(pid)) process.kill(pid, 'SIGKILL');
        await sleep(200);
      });
      const consoleTail = async (): Promise<string> =>
        `qemu: ${qemuErr}\nconsole:\n${(await readFile(consoleLog, 'utf8').catch(() => '')).split('\n').slice(-25).join('\n')}`;

      const knownHosts = path.join(dir, 'known_hosts');
      await writeFile(knownHosts, `${attachment.guestIp} ${hostPub.split(' ').slice(0, 2).join(' ')}\n`);
      const ssh = (command: string): string =>
        lab.execInHost([
          'ssh',
          '-i',
          path.join(dir, 'id'),
          '-o',
          `UserKnownHostsFile=${knownHosts}`,
          '-o',
          'GlobalKnownHostsFile=/dev/null',
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          'ConnectTimeout=5',
          '-o',
          'LogLevel=ERROR',
          `root@${attachment.guestIp}`,
          command,
        ]);

      const deadline = Date.now() + 300_000;
      for (;;) {
        if (!alive(pid)) assert.fail(`qemu exited before SSH was ready\n${await consoleTail()}`);
        try {
          ssh('true');
          break;
        } catch (e) {
          if (Date.now() > deadline)
            assert.fail(
              `no SSH on ${attachment.guestIp} within 300 s: ${(e as Error).message}\n${await consoleTail()}`,
            );
          await sleep(2000);
        }
      }

      assert.equal(ssh('hostname').trim(), 'kindling-boot-test');
      assert.match(
        ssh('ip -4 -o addr show dev eth0'),
        new RegExp(attachment.guestCidr.replace(/\./g, '\\.')),
      );
      assert.equal(
        ssh('ls /etc/ssh/ | grep -c ssh_host_').trim(),
        '2',
        'the boot unit made no extra host keys',
      );
      for (let i = 0; ; i++) {
        const out = ssh('cat /var/tmp/entrypoint.out 2>/dev/null || true').trim();
        if (out) {
          assert.equal(out, 'hello 100% world from nobody in /var/tmp');
          break;
        }
        if (i > 30)
          assert.fail(
            `the entrypoint never ran:\n${ssh('systemctl status kindling-entrypoint --no-pager || true')}`,
          );
        await sleep(1000);
      }
      assert.match(
        ssh('systemctl show -p KillSignal -p User kindling-entrypoint'),
        /KillSignal=15[\s\S]*User=nobody|User=nobody[\s\S]*KillSignal=15/,
      );

      // The ACPI power button (what StopVm presses) must power the guest off cleanly.
      await qmpPowerdown(path.join(dir, 'qmp.sock'));
      for (let i = 0; alive(pid) && i < 120; i++) await sleep(500);
      assert.equal(alive(pid), false, `the guest did not power off\n${await consoleTail()}`);
      execFileSync('e2fsck', ['-fn', image], { stdio: 'pipe' });
      assert.equal(
        debugfs(image, 'cat /var/tmp/entrypoint.out').trim(),
        'hello 100% world from nobody in /var/tmp',
      );
    },
  );
});
