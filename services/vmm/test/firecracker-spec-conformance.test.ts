/**
 * Every request body the Firecracker driver sends, for a range of VM specs, validates against its
 * path and method in both bundled specs (v1.16.1 and v1.7.0), and every response field the driver
 * reads is one the spec defines.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VmLaunchSpec } from '../src/ports/hypervisor.ts';
import { defaultFirecrackerConfig, type FirecrackerConfig } from '../src/adapters/firecracker/config.ts';
import { vmConfigurationRequests, type VmFilePaths } from '../src/adapters/firecracker/vm-configuration.ts';
import { FirecrackerSpec, SPEC_VERSIONS } from './support/firecracker-spec.ts';

const guestJson = {
  vmId: 'vm-1',
  hostname: 'build-1',
  network: { address: '10.200.0.5/24', gateway: '10.200.0.1', mtu: 1500, nameservers: [] },
  authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake kindling-build'],
  image: {
    entrypoint: ['/bin/sh', '-c'],
    cmd: ['echo hi'],
    env: ['PATH=/usr/bin', 'A=b c'],
    user: '',
    workingDir: '/',
    stopSignal: 'SIGTERM',
  },
};

function spec(overrides: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
  return {
    vmId: 'vm-1',
    vcpus: 2,
    memoryMib: 1024,
    kernel: {
      vmlinuxPath: '/var/cache/kindling/baseos/abc/kernel/vmlinux',
      initrdPath: '/var/cache/kindling/baseos/abc/kernel/initrd.img',
    },
    kernelArgs: 'root=/dev/vda rw net.ifnames=0 ip=10.200.0.5::10.200.0.1:255.255.255.0:build-1:eth0:off',
    rootfsPath: '/var/lib/kindling/vms/vm-1/rootfs.ext4',
    network: {
      netnsPath: '/var/run/netns/kindling-vm-1',
      tapName: 'tap0',
      guestMac: '02:fc:00:00:00:05',
      guestCidr: '10.200.0.5/24',
      gateway: '10.200.0.1',
      mtu: 1500,
    },
    runDir: '/run/kindling/vms/vm-1',
    consoleLogPath: '/var/lib/kindling/vms/vm-1/console.log',
    guestMetadata: guestJson,
    ...overrides,
  };
}

const jailPaths: VmFilePaths = {
  kernel: '/vmlinux',
  initrd: '/initrd.img',
  rootfs: '/rootfs.ext4',
  log: '/firecracker.log',
  metrics: '/firecracker.metrics',
};
const { initrd: _noInitrd, ...jailPathsWithoutInitrd } = jailPaths;

const cases: {
  name: string;
  spec: VmLaunchSpec;
  config?: Partial<FirecrackerConfig>;
  paths?: VmFilePaths;
}[] = [
  { name: 'typical build VM', spec: spec() },
  {
    name: '1 vCPU, 128 MiB, no initrd',
    spec: spec({ vcpus: 1, memoryMib: 128, kernel: { vmlinuxPath: '/k/vmlinux' } }),
    paths: jailPathsWithoutInitrd,
  },
  { name: '32 vCPUs, 64 GiB', spec: spec({ vcpus: 32, memoryMib: 65_536 }) },
  { name: 'odd vCPU count without SMT', spec: spec({ vcpus: 3 }) },
  { name: 'no network (no MMDS)', spec: spec({ network: undefined }) },
  { name: 'network without metadata', spec: spec({ guestMetadata: undefined }) },
  {
    name: 'base image metadata (no image section)',
    spec: spec({ guestMetadata: { ...guestJson, image: undefined } }),
  },
  {
    name: 'transfer disk, read-only after the root drive',
    spec: spec({ transferDiskPath: '/v/transfer.img' }),
    paths: { ...jailPaths, transferDisk: '/transfer.img' },
  },
  { name: 'empty kernel args', spec: spec({ kernelArgs: '' }), config: { kernelArgs: '' } },
  {
    name: 'root drive rate limiter and debug logging',
    spec: spec(),
    config: {
      logLevel: 'Debug',
      rootDriveRateLimiter: {
        bandwidth: { size: 104_857_600, refill_time: 1000, one_time_burst: 0 },
        ops: { size: 1000, refill_time: 1000 },
      },
    },
  },
  {
    name: 'direct (unjailed) host paths',
    spec: spec(),
    config: { useJailer: false },
    paths: {
      kernel: '/k/vmlinux',
      initrd: '/k/initrd.img',
      rootfs: '/v/rootfs.ext4',
      log: '/run/kindling/vms/vm-1/firecracker.log',
      metrics: '/run/kindling/vms/vm-1/firecracker.metrics',
    },
  },
];

describe('firecracker request bodies conform to both API specs', () => {
  for (const c of cases) {
    it(c.name, () => {
      const config = { ...defaultFirecrackerConfig, ...c.config };
      const requests = vmConfigurationRequests(c.spec, config, c.paths ?? jailPaths);
      const all = [
        ...requests,
        { method: 'PUT', path: '/actions', body: { action_type: 'InstanceStart' } },
        { method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' } },
      ];
      for (const version of SPEC_VERSIONS) {
        const fc = FirecrackerSpec.load(version);
        for (const r of all)
          assert.deepEqual(
            fc.validateRequest(r.method, r.path, r.body),
            [],
            `${r.method} ${r.path} against v${version}`,
          );
        for (const path of ['/', '/version', '/vm/config'])
          assert.deepEqual(fc.validateRequest('GET', path, undefined), []);
      }
      for (const version of SPEC_VERSIONS) {
        const fc = FirecrackerSpec.load(version);
        for (const r of requests)
          assert.notEqual(fc.bootPhase(r.method, r.path), 'post-boot', `${r.path} is sent before boot`);
        assert.equal(fc.bootPhase('PUT', '/boot-source'), 'pre-boot', `v${version} marks pre-boot requests`);
        assert.equal(fc.bootPhase('PATCH', '/drives/rootfs'), 'post-boot');
      }
      const steps = requests.map((r) => r.path);
      const transfer = requests.find((r) => r.path === '/drives/transfer');
      assert.equal(transfer !== undefined, (c.paths ?? jailPaths).transferDisk !== undefined);
      if (transfer) {
        assert.deepEqual(transfer.body, { drive_id: 'transfer', path_on_host: '/transfer.img', is_root_device: false, is_read_only: true });
        assert.ok(steps.indexOf('/drives/transfer') > steps.indexOf('/drives/rootfs'), 'the root drive is vda, the transfer disk vdb');
      }
      assert.equal(
        steps.includes('/mmds'),
        c.spec.network !== undefined && c.spec.guestMetadata !== undefined,
      );
      if (steps.includes('/mmds')) {
        assert.deepEqual(
          requests.find((r) => r.path === '/mmds')?.body,
          c.spec.guestMetadata,
          'MMDS serves guest.json as its root document',
        );
        assert.ok(
          steps.indexOf('/mmds/config') > steps.indexOf('/network-interfaces/eth0'),
          'MMDS names an interface that already exists',
        );
      }
    });
  }

  it("boot args put the driver defaults first and keep the VM spec's", () => {
    const [, , , boot] = vmConfigurationRequests(spec(), defaultFirecrackerConfig, jailPaths);
    assert.equal(boot?.path, '/boot-source');
    assert.match(
      String((boot?.body as { boot_args: string }).boot_args),
      /^console=ttyS0 reboot=k panic=1 pci=off root=\/dev\/vda rw net\.ifnames=0 ip=/,
    );
  });

  it('the checker refuses requests the spec does not define and fields a version lacks', () => {
    const v17 = FirecrackerSpec.load('1.7.0');
    assert.match(
      v17.validateRequest('PUT', '/serial', { serial_out_path: '/x' }).join(),
      /does not define PUT \/serial/,
    );
    assert.match(
      v17.validateRequest('POST', '/actions', { action_type: 'InstanceStart' }).join(),
      /does not define/,
    );
    assert.match(
      v17
        .validateRequest('PUT', '/network-interfaces/eth0', {
          iface_id: 'eth0',
          host_dev_name: 'tap0',
          mtu: 1500,
        })
        .join(),
      /additional properties/,
    );
    assert.deepEqual(
      FirecrackerSpec.load('1.16.1').validateRequest('PUT', '/network-interfaces/eth0', {
        iface_id: 'eth0',
        host_dev_name: 'tap0',
        mtu: 1500,
      }),
      [],
    );
    assert.match(
      v17.validateRequest('PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 1 }).join(),
      /must be <= 32/,
    );
  });

  it('rejects VM specs Firecracker cannot run before sending anything', () => {
    const network = spec().network;
    assert.ok(network);
    const refused: [Partial<VmLaunchSpec>, RegExp][] = [
      [{ vcpus: 33 }, /vcpus 33 is outside firecracker's range 1-32/],
      [{ kernel: { bzImagePath: '/boot/vmlinuz' } }, /uncompressed ELF vmlinux/],
      [
        { network: { ...network, tapName: 'tap-kindling-vm1' } },
        /tap "tap-kindling-vm1" is not a usable interface name \(1-15 bytes/,
      ],
      [
        { network: { ...network, guestMac: '02-fc-00-00-00-05' } },
        /guest MAC "02-fc-00-00-00-05" is not six colon-separated hex octets/,
      ],
      [
        { guestMetadata: { ...guestJson, image: { ...guestJson.image, env: ['X='.padEnd(52_000, 'x')] } } },
        /guest metadata \(guest.json for MMDS\) is \d+ bytes; Firecracker accepts at most 51200 in PUT \/mmds/,
      ],
    ];
    for (const [overrides, message] of refused)
      assert.throws(
        () => vmConfigurationRequests(spec(overrides), defaultFirecrackerConfig, jailPaths),
        message,
      );
    assert.doesNotThrow(() =>
      vmConfigurationRequests(
        spec({ network: { ...network, tapName: 'tap-kindling-vm' } }),
        defaultFirecrackerConfig,
        jailPaths,
      ),
    );
  });
});

describe('firecracker responses the driver parses are shapes the specs define', () => {
  const read: [string, string][] = [
    ['FirecrackerVersion', 'firecracker_version'],
    ['InstanceInfo', 'state'],
    ['InstanceInfo', 'id'],
    ['Error', 'fault_message'],
    ['FullVmConfiguration', 'machine-config'],
    ['FullVmConfiguration', 'boot-source'],
    ['FullVmConfiguration', 'drives'],
    ['FullVmConfiguration', 'network-interfaces'],
    ['FullVmConfiguration', 'mmds-config'],
    ['FullVmConfiguration', 'logger'],
    ['FullVmConfiguration', 'metrics'],
  ];
  for (const version of SPEC_VERSIONS) {
    it(`v${version}`, () => {
      const fc = FirecrackerSpec.load(version);
      for (const [definition, property] of read)
        assert.ok(fc.definitionHasProperty(definition, property), `${definition}.${property}`);
      assert.deepEqual(fc.validateResponse('GET', '/version', 200, { firecracker_version: version }), []);
      assert.deepEqual(
        fc.validateResponse('GET', '/', 200, {
          app_name: 'Firecracker',
          id: 'vm-1',
          state: 'Running',
          vmm_version: version,
        }),
        [],
      );
      assert.deepEqual(fc.validateResponse('PUT', '/drives/rootfs', 400, { fault_message: 'bad' }), []);
      assert.deepEqual(fc.validateResponse('PUT', '/actions', 204, undefined), []);
      assert.notDeepEqual(fc.validateResponse('GET', '/', 200, { state: 'Exploded' }), []);
    });
  }
});
