import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cniNetworkResolver } from '../src/adapters/cni/cni-network.ts';
import { CniPluginError } from '../src/adapters/cni/plugin-exec.ts';
import { listNetns } from '../src/adapters/cni/netns.ts';
import { FailedPreconditionError } from '../src/domain/errors.ts';
import { CniLab, cniLabUnavailable } from './support/cni-lab.ts';

const unavailable = cniLabUnavailable();

const inNetns = (nsPath: string, argv: string[]): string =>
  execFileSync('nsenter', [`--net=${nsPath}`, '--', ...argv], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** host-local keeps one file per leased address (named by the address) in <dataDir>/<network>/. */
async function leases(lab: CniLab, network: string): Promise<string[]> {
  const dir = path.join(lab.dataDir, network);
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
}

const cacheFiles = async (lab: CniLab): Promise<string[]> =>
  existsSync(path.join(lab.cacheDir, 'results')) ? readdir(path.join(lab.cacheDir, 'results')) : [];

describe('CNI networks with real plugins in test-owned namespaces', { skip: unavailable }, () => {
  let lab: CniLab;

  before(async () => {
    lab = await CniLab.create();
    await lab.addNetwork({ name: 'kt-v1', cniVersion: '1.0.0', subnetOctet: 11 });
    await lab.addNetwork({
      name: 'kt-v040',
      cniVersion: '0.4.0',
      subnetOctet: 12,
      tapType: 'tc-redirect-tap',
    });
  });

  after(async () => {
    await lab?.cleanup();
  });

  it('ADD gives the VM an address, the veth MAC and a tap redirected both ways; CHECK passes; DEL removes it all', async () => {
    const net = lab.network('kt-v1');
    const ns = await lab.createVmNetns('a');
    const a = await net.attach('vm-a', ns);
    assert.match(a.guestCidr, /^10\.231\.11\.\d+\/24$/);
    assert.equal(a.gateway, '10.231.11.1');
    assert.equal(a.netmask, '255.255.255.0');
    assert.equal(a.tapName, 'tap0');
    assert.equal(a.netnsPath, ns);
    const eth0 = JSON.parse(inNetns(ns, ['ip', '-j', 'link', 'show', 'eth0'])) as {
      address: string;
      mtu: number;
    }[];
    assert.equal(a.guestMac, eth0[0]?.address, 'the guest NIC must use the veth MAC');
    const filters = inNetns(ns, ['tc', 'filter', 'show', 'dev', 'eth0', 'parent', 'ffff:']);
    assert.match(filters, /mirred.*Redirect to device tap0/i);
    assert.match(
      inNetns(ns, ['tc', 'filter', 'show', 'dev', 'tap0', 'parent', 'ffff:']),
      /Redirect to device eth0/i,
    );
    assert.equal((await leases(lab, 'kt-v1')).length, 1);
    assert.deepEqual(await net.attachment('vm-a'), a);

    await net.check('vm-a');

    await net.detach('vm-a');
    assert.throws(() => inNetns(ns, ['ip', 'link', 'show', 'tap0']));
    assert.throws(() => inNetns(ns, ['ip', 'link', 'show', 'eth0']));
    assert.deepEqual(await leases(lab, 'kt-v1'), []);
    assert.deepEqual(await cacheFiles(lab), []);
    assert.equal(await net.attachment('vm-a'), undefined);
  });

  it('DEL is idempotent: a second DEL, and a DEL for a VM never attached, succeed', async () => {
    const net = lab.network('kt-v1');
    const ns = await lab.createVmNetns('b');
    await net.attach('vm-b', ns);
    await net.detach('vm-b');
    await net.detach('vm-b');
    await net.detach('vm-never', ns);
    assert.deepEqual(await leases(lab, 'kt-v1'), []);
  });

  it('works with a 0.4.0 conflist and stands kindling-tap in for a missing tc-redirect-tap', async () => {
    const net = lab.network('kt-v040');
    const ns = await lab.createVmNetns('c');
    const a = await net.attach('vm-c', ns);
    assert.match(a.guestCidr, /^10\.231\.12\.\d+\/24$/);
    assert.equal(a.tapName, 'tap0');
    await net.check('vm-c');
    await net.detach('vm-c');
    assert.deepEqual(await leases(lab, 'kt-v040'), []);
  });

  it('after a restart, DEL works from the on-disk result even when the conflist is gone', async () => {
    const file = await lab.addNetwork({ name: 'kt-restart', cniVersion: '1.0.0', subnetOctet: 13 });
    const ns = await lab.createVmNetns('d');
    const before = await lab.network('kt-restart').attach('vm-d', ns);
    await rm(file);
    // A new CniNetwork object is what a restarted vmm has: only the disk.
    const restarted = lab.network('kt-restart');
    assert.deepEqual(await restarted.attachment('vm-d'), before);
    await restarted.check('vm-d');
    await restarted.detach('vm-d');
    assert.deepEqual(await leases(lab, 'kt-restart'), []);
    assert.throws(() => inNetns(ns, ['ip', 'link', 'show', 'tap0']));
  });

  it('CHECK reports a tap that went missing', async () => {
    const net = lab.network('kt-v1');
    const ns = await lab.createVmNetns('e');
    await net.attach('vm-e', ns);
    inNetns(ns, ['ip', 'link', 'del', 'tap0']);
    await assert.rejects(net.check('vm-e'), (e: unknown) => {
      assert.ok(e instanceof CniPluginError);
      assert.match(e.message, /tap0 is missing/);
      return true;
    });
    await net.detach('vm-e');
    assert.deepEqual(await leases(lab, 'kt-v1'), []);
  });

  it('a plugin error surfaces its code and message, and the failed ADD leaves nothing behind', async () => {
    await lab.addNetwork({
      name: 'kt-broken',
      cniVersion: '1.0.0',
      subnetOctet: 14,
      plugins: [
        {
          type: 'bridge',
          bridge: 'ktbr14',
          isGateway: true,
          ipam: { type: 'host-local', subnet: '10.231.14.0/24', dataDir: lab.dataDir },
        },
        // host-local is fine, so the bridge plugin succeeds; this plugin then fails on its config.
        { type: 'kindling-tap', tapName: 'this-name-is-far-too-long-for-linux' },
      ],
    });
    const ns = await lab.createVmNetns('f');
    await assert.rejects(lab.network('kt-broken').attach('vm-f', ns), (e: unknown) => {
      assert.ok(e instanceof CniPluginError, String(e));
      assert.equal(e.plugin, 'kindling-tap');
      assert.equal(e.cniCode, 7);
      assert.match(e.cniMsg, /not a valid interface name/);
      assert.match(e.message, /code 7/);
      return true;
    });
    assert.deepEqual(await leases(lab, 'kt-broken'), []);
    assert.throws(() => inNetns(ns, ['ip', 'link', 'show', 'eth0']));
    assert.deepEqual(await cacheFiles(lab), []);
  });

  it('an upstream plugin error (host-local with a bad subnet) keeps the plugin code and message', async () => {
    await lab.addNetwork({
      name: 'kt-badipam',
      cniVersion: '1.0.0',
      subnetOctet: 15,
      plugins: [
        {
          type: 'bridge',
          bridge: 'ktbr15',
          ipam: { type: 'host-local', subnet: 'not-a-subnet', dataDir: lab.dataDir },
        },
      ],
    });
    const ns = await lab.createVmNetns('g');
    await assert.rejects(lab.network('kt-badipam').attach('vm-g', ns), (e: unknown) => {
      assert.ok(e instanceof CniPluginError, String(e));
      assert.equal(e.plugin, 'bridge');
      assert.ok(e.cniCode > 0);
      assert.match(e.cniMsg, /not-a-subnet|invalid CIDR/i);
      return true;
    });
  });

  it('the resolver the lifecycle core uses refuses an unknown network before anything is created', async () => {
    const resolve = cniNetworkResolver({
      confDir: lab.confDir,
      cacheDir: lab.cacheDir,
      hostNetnsPath: lab.hostNetnsPath,
    });
    assert.equal((await resolve('kt-v1')).networkName, 'kt-v1');
    await assert.rejects(
      resolve('nope'),
      (e: unknown) => e instanceof FailedPreconditionError && e.message.includes(lab.confDir),
    );
  });

  it('an unknown network is FAILED_PRECONDITION naming the config dir, and creates nothing', async () => {
    const ns = await lab.createVmNetns('h');
    await assert.rejects(lab.network('no-such-net').attach('vm-h', ns), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError);
      assert.equal(e.code, 'FAILED_PRECONDITION');
      assert.ok(e.message.includes(lab.confDir), e.message);
      assert.match(e.message, /networks there: .*kt-v1/);
      return true;
    });
    assert.deepEqual(await cacheFiles(lab), []);
  });

  it('left nothing in the root namespace, and cleanup removes every namespace it made', async () => {
    // The bridges and the veth host ends live in the test's host netns only.
    assert.equal(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).includes('ktbr'), false);
    assert.match(lab.execInHost(['ip', '-o', 'link', 'show']), /ktbr11/);
    const names = [lab.hostNetns, ...lab.vmNetns];
    await lab.cleanup();
    const remaining = await listNetns();
    assert.deepEqual(
      names.filter((n) => remaining.includes(n)),
      [],
    );
  });
});
