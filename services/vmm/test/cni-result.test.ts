import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachmentFromResult } from '../src/adapters/cni/attachment.ts';
import { parseCniResult } from '../src/adapters/cni/result.ts';
import { FailedPreconditionError } from '../src/domain/errors.ts';

const ids = { vmId: 'vm-1', networkName: 'net', netnsPath: '/var/run/netns/kindling-vm-1', ifName: 'eth0' };

// What a bridge + host-local + firewall + tap chain prints, per spec version.
const v1 = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'kindling0', mac: '2a:00:00:00:00:01' },
    { name: 'veth1234', mac: '2a:00:00:00:00:02' },
    { name: 'eth0', mac: '2a:00:00:00:00:03', sandbox: ids.netnsPath },
    { name: 'tap0', mac: '2a:00:00:00:00:04', sandbox: ids.netnsPath },
    { name: 'tap0', mac: '2a:00:00:00:00:03', sandbox: 'vm-1' },
  ],
  ips: [
    { address: '10.200.0.5/24', gateway: '10.200.0.1', interface: 2 },
    { address: '10.200.0.5/24', gateway: '10.200.0.1', interface: 4 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.200.0.1' }],
  dns: { nameservers: ['10.200.0.1'] },
};

const v040 = {
  ...v1,
  cniVersion: '0.4.0',
  ips: v1.ips.map((ip) => ({ version: '4', ...ip })),
};

describe('CNI results', () => {
  it('parses a 1.0.0 result into the VM attachment (the VM interface wins)', () => {
    const result = parseCniResult(v1);
    assert.equal(result.cniVersion, '1.0.0');
    assert.equal(result.interfaces.length, 5);
    const a = attachmentFromResult(result, ids);
    assert.deepEqual(
      {
        tap: a.tapName,
        mac: a.guestMac,
        cidr: a.guestCidr,
        ip: a.guestIp,
        mask: a.netmask,
        gw: a.gateway,
        dns: a.nameservers,
      },
      {
        tap: 'tap0',
        mac: '2a:00:00:00:00:03',
        cidr: '10.200.0.5/24',
        ip: '10.200.0.5',
        mask: '255.255.255.0',
        gw: '10.200.0.1',
        dns: ['10.200.0.1'],
      },
    );
  });

  it('parses a 0.4.0 result (ips carry "version") the same way', () => {
    const result = parseCniResult(v040);
    assert.equal(result.cniVersion, '0.4.0');
    assert.equal(result.ips[0]?.address, '10.200.0.5/24');
    const a = attachmentFromResult(result, ids);
    assert.equal(a.guestCidr, '10.200.0.5/24');
    assert.equal(a.prefixLength, 24);
    assert.equal(a.tapName, 'tap0');
  });

  it('parses the legacy 0.2.0 ip4 form', () => {
    const result = parseCniResult({
      cniVersion: '0.2.0',
      ip4: { ip: '10.1.0.9/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] },
    });
    assert.deepEqual(result.ips, [{ address: '10.1.0.9/16', gateway: '10.1.0.1' }]);
    assert.equal(result.routes[0]?.dst, '0.0.0.0/0');
  });

  it('rejects results of unknown versions and malformed ones, saying what is wrong', () => {
    assert.throws(() => parseCniResult({ cniVersion: '9.9.9' }), /cniVersion 9\.9\.9; supported/);
    assert.throws(
      () => parseCniResult({ cniVersion: '1.0.0', ips: [{ gateway: 'x' }] }),
      /ips\[0\] has no "address"/,
    );
    assert.throws(() => parseCniResult('nope'), /not a JSON object/);
  });

  it('explains a chain without a tap plugin', () => {
    const noTap = parseCniResult({ ...v1, interfaces: v1.interfaces.slice(0, 3), ips: [v1.ips[0]] });
    assert.throws(
      () => attachmentFromResult(noTap, ids),
      (e) =>
        // A domain error, so CreateVm answers FAILED_PRECONDITION with this text rather than a bare INTERNAL.
        e instanceof FailedPreconditionError &&
        /no tap device: end its conflist with a tc-redirect-tap/.test(e.message),
    );
  });
});
