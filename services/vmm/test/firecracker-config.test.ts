/** The Firecracker driver's settings: defaults from the issue, flags over environment, clear errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultFirecrackerConfig, loadFirecrackerConfig } from '../src/adapters/firecracker/config.ts';
import { FirecrackerSpec, SPEC_VERSIONS } from './support/firecracker-spec.ts';

describe('firecracker settings', () => {
  it("defaults to the jailer, /srv/jailer, a non-root uid/gid, cgroup v2 and Firecracker's usual kernel args", () => {
    const config = loadFirecrackerConfig([], {});
    assert.deepEqual(config, defaultFirecrackerConfig);
    assert.equal(config.useJailer, true);
    assert.equal(config.chrootBase, '/srv/jailer');
    assert.notEqual(config.jailerUid, 0);
    assert.notEqual(config.jailerGid, 0);
    assert.equal(config.cgroupVersion, 2);
    assert.equal(config.kernelArgs, 'console=ttyS0 reboot=k panic=1 pci=off');
    assert.equal(config.numaNode, undefined);
  });

  it('reads --binary-firecracker / --binary-jailer and the rest from flags over KINDLING_VMM_* variables', () => {
    const config = loadFirecrackerConfig(
      [
        '--binary-firecracker',
        '/opt/fc/firecracker',
        '--binary-jailer=/opt/fc/jailer',
        '--firecracker-cgroup-version=1',
        '--firecracker-numa-node',
        '1',
        '--firecracker-resource-limits=fsize=1000000,no-file=1024',
        '--firecracker-kill-grace=5s',
        '--firecracker-daemonize',
      ],
      {
        KINDLING_VMM_FIRECRACKER_USE_JAILER: 'false',
        KINDLING_VMM_BINARY_JAILER: '/ignored/jailer',
        KINDLING_VMM_FIRECRACKER_UID: '123',
        KINDLING_VMM_FIRECRACKER_ROOT_DRIVE_RATE_LIMITER: '{"bandwidth":{"size":1048576,"refill_time":1000}}',
      },
    );
    assert.equal(config.firecrackerBinary, '/opt/fc/firecracker');
    assert.equal(config.jailerBinary, '/opt/fc/jailer');
    assert.equal(config.useJailer, false);
    assert.equal(config.jailerUid, 123);
    assert.equal(config.cgroupVersion, 1);
    assert.equal(config.numaNode, 1);
    assert.deepEqual(config.resourceLimits, ['fsize=1000000', 'no-file=1024']);
    assert.equal(config.killGraceMs, 5000);
    assert.equal(config.daemonize, true);
    assert.deepEqual(config.rootDriveRateLimiter, { bandwidth: { size: 1048576, refill_time: 1000 } });
  });

  it('names the flag and the variable of a bad value', () => {
    assert.throws(
      () => loadFirecrackerConfig(['--firecracker-chroot-base=srv/jailer']),
      /--firecracker-chroot-base \(KINDLING_VMM_FIRECRACKER_CHROOT_BASE\) has a bad value "srv\/jailer": expected an absolute path/,
    );
    assert.throws(() => loadFirecrackerConfig(['--firecracker-cgroup-version=3']), /expected one of 1, 2/);
    assert.throws(
      () => loadFirecrackerConfig(['--firecracker-parent-cgroup=../escape']),
      /relative cgroup path/,
    );
    assert.throws(
      () => loadFirecrackerConfig(['--firecracker-resource-limits=nproc=10']),
      /"nproc=10" is not fsize=<bytes> or no-file=<n>/,
    );
    assert.throws(
      () => loadFirecrackerConfig(['--firecracker-parent-cgroup=./kindling']),
      /relative cgroup path/,
    );
    assert.throws(
      () => loadFirecrackerConfig([], { KINDLING_VMM_FIRECRACKER_ROOT_DRIVE_RATE_LIMITER: '[1]' }),
      /expected a JSON object/,
    );
    const limiter = (json: string) =>
      loadFirecrackerConfig([], { KINDLING_VMM_FIRECRACKER_ROOT_DRIVE_RATE_LIMITER: json });
    assert.throws(
      () => limiter('{"bandwidth":{"size":"100","refill_time":1000}}'),
      /bandwidth.size must be a non-negative integer/,
    );
    assert.throws(() => limiter('{"bandwidth":{"size":100}}'), /bandwidth needs size and refill_time/);
    assert.throws(() => limiter('{"iops":{"size":1,"refill_time":1}}'), /unknown field "iops"/);
    assert.throws(() => limiter('{"ops":{"size":1,"refill_time":1,"burst":5}}'), /unknown field "ops.burst"/);
  });

  it('accepts only root drive rate limiters both API specs accept', () => {
    for (const json of [
      '{"bandwidth":{"size":104857600,"refill_time":1000}}',
      '{"ops":{"size":1000,"refill_time":1000,"one_time_burst":0},"bandwidth":{"size":1,"refill_time":0}}',
      '{}',
    ]) {
      const { rootDriveRateLimiter } = loadFirecrackerConfig([], {
        KINDLING_VMM_FIRECRACKER_ROOT_DRIVE_RATE_LIMITER: json,
      });
      for (const version of SPEC_VERSIONS)
        assert.deepEqual(
          FirecrackerSpec.load(version).validateRequest('PUT', '/drives/rootfs', {
            drive_id: 'rootfs',
            path_on_host: '/rootfs.ext4',
            is_root_device: true,
            is_read_only: false,
            rate_limiter: rootDriveRateLimiter,
          }),
          [],
          `${json} against v${version}`,
        );
    }
  });
});
