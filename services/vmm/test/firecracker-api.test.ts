/**
 * The API client against a spec-written Firecracker API server on a Unix socket: the configuration
 * chain, InstanceStart, read-back, Firecracker's pre-boot rule, and a 400 on each request
 * surfacing as an error that names the request and the fault_message.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { FirecrackerApiClient } from '../src/adapters/firecracker/api-client.ts';
import { defaultFirecrackerConfig } from '../src/adapters/firecracker/config.ts';
import { FirecrackerApiError } from '../src/adapters/firecracker/errors.ts';
import { vmConfigurationRequests, type VmFilePaths } from '../src/adapters/firecracker/vm-configuration.ts';
import type { VmLaunchSpec } from '../src/ports/hypervisor.ts';
import { FakeFirecrackerApi } from './support/fake-firecracker-api.ts';
import { FirecrackerSpec, SPEC_VERSIONS, type SpecVersion } from './support/firecracker-spec.ts';

interface Rig {
  readonly api: FakeFirecrackerApi;
  readonly client: FirecrackerApiClient;
  readonly spec: VmLaunchSpec;
  readonly paths: VmFilePaths;
}

async function rig(t: TestContext, options: { failOn?: string[]; version?: SpecVersion } = {}): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-fc-api-'));
  const api = new FakeFirecrackerApi({
    socketPath: join(dir, 'api.sock'),
    id: 'vm-api',
    root: dir,
    ...options,
  });
  await api.listen();
  const client = new FirecrackerApiClient(join(dir, 'api.sock'));
  t.after(async () => {
    await client.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  for (const file of ['vmlinux', 'initrd.img', 'rootfs.ext4', 'fc.log', 'fc.metrics'])
    await writeFile(join(dir, file), 'x');
  const spec: VmLaunchSpec = {
    vmId: 'vm-api',
    vcpus: 2,
    memoryMib: 512,
    kernel: { vmlinuxPath: '/vmlinux', initrdPath: '/initrd.img' },
    kernelArgs: 'root=/dev/vda rw',
    rootfsPath: '/rootfs.ext4',
    network: {
      netnsPath: '/var/run/netns/x',
      tapName: 'tap0',
      guestMac: '02:fc:00:00:00:07',
      guestCidr: '10.200.0.7/24',
    },
    runDir: dir,
    consoleLogPath: join(dir, 'console.log'),
    guestMetadata: {
      vmId: 'vm-api',
      hostname: 'vm-api',
      network: { address: '10.200.0.7/24', gateway: '10.200.0.1', mtu: 1500, nameservers: [] },
      authorizedKeys: [],
    },
  };
  return {
    api,
    client,
    spec,
    paths: {
      kernel: '/vmlinux',
      initrd: '/initrd.img',
      rootfs: '/rootfs.ext4',
      log: '/fc.log',
      metrics: '/fc.metrics',
    },
  };
}

async function configure(r: Rig): Promise<void> {
  for (const req of vmConfigurationRequests(r.spec, defaultFirecrackerConfig, r.paths))
    await r.client.request(req.method, req.path, req.body);
}

describe('firecracker API client against the spec-written fake', () => {
  for (const version of SPEC_VERSIONS) {
    it(`configures, starts, reads back and shuts down a VM (API v${version})`, async (t) => {
      const r = await rig(t, { version });
      assert.equal((await r.client.getVersion()).firecracker_version, version);
      assert.equal((await r.client.describeInstance()).state, 'Not started');
      await configure(r);
      await r.client.action('InstanceStart');
      const info = await r.client.describeInstance();
      assert.deepEqual([info.state, info.id], ['Running', 'vm-api']);
      const config = await r.client.getVmConfig();
      assert.deepEqual(config['machine-config'], {
        vcpu_count: 2,
        mem_size_mib: 512,
        smt: false,
        track_dirty_pages: false,
      });
      assert.equal(config['boot-source']?.kernel_image_path, '/vmlinux');
      assert.deepEqual(
        config.drives?.map((d) => [d.drive_id, d.path_on_host, d.is_root_device, d.is_read_only]),
        [['rootfs', '/rootfs.ext4', true, false]],
      );
      assert.deepEqual(
        config['network-interfaces']?.map((n) => [n.iface_id, n.host_dev_name, n.guest_mac]),
        [['eth0', 'tap0', '02:fc:00:00:00:07']],
      );
      assert.deepEqual(config['mmds-config']?.network_interfaces, ['eth0']);
      assert.deepEqual(r.api.mmds, r.spec.guestMetadata);
      await r.client.action('SendCtrlAltDel');
      assert.deepEqual(r.api.violations, []);
      // Every request sent must also exist, with a valid body, in the other spec version.
      for (const other of SPEC_VERSIONS) {
        const fc = FirecrackerSpec.load(other);
        for (const req of r.api.requests)
          assert.deepEqual(
            fc.validateRequest(req.method, req.path, req.body),
            [],
            `${req.method} ${req.path} in v${other}`,
          );
      }
    });
  }

  it('refuses pre-boot changes after InstanceStart, naming the request', async (t) => {
    const r = await rig(t);
    await configure(r);
    await r.client.action('InstanceStart');
    await assert.rejects(
      r.client.putMachineConfig({ vcpu_count: 4, mem_size_mib: 512 }),
      (error: unknown) => {
        assert.ok(error instanceof FirecrackerApiError);
        assert.equal(error.request, 'PUT /machine-config');
        assert.equal(error.statusCode, 400);
        assert.match(
          error.message,
          /PUT \/machine-config failed with HTTP 400: The requested operation is not supported after starting the microVM/,
        );
        return true;
      },
    );
    await assert.rejects(
      r.client.action('InstanceStart'),
      /PUT \/actions failed with HTTP 400: The microVM is already running/,
    );
    assert.deepEqual(r.api.violations, []);
  });

  it("takes the pre-boot/post-boot rule from the spec's summaries", async (t) => {
    const r = await rig(t);
    await assert.rejects(
      r.client.request('PATCH', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: '/rootfs.ext4' }),
      /PATCH \/drives\/rootfs failed with HTTP 400: The requested operation is not supported before starting the microVM/,
    );
    await configure(r);
    await r.client.action('InstanceStart');
    await assert.rejects(
      r.client.request('PUT', '/vsock', { guest_cid: 3, uds_path: '/v.sock' }),
      /PUT \/vsock failed with HTTP 400: The requested operation is not supported after starting the microVM/,
    );
    await r.client.putMmds({ updated: true });
    assert.deepEqual(r.api.mmds, { updated: true }, 'PUT /mmds stays allowed after boot');
    assert.deepEqual(r.api.violations, []);
  });

  it('refuses InstanceStart without a boot source', async (t) => {
    const r = await rig(t);
    await assert.rejects(
      r.client.action('InstanceStart'),
      /Cannot start microvm without kernel configuration/,
    );
  });

  const steps = [
    'PUT /logger',
    'PUT /metrics',
    'PUT /machine-config',
    'PUT /boot-source',
    'PUT /drives/rootfs',
    'PUT /network-interfaces/eth0',
    'PUT /mmds/config',
    'PUT /mmds',
    'PUT /actions',
  ];
  for (const failing of steps) {
    it(`a 400 on ${failing} surfaces as an error naming it`, async (t) => {
      const r = await rig(t, { failOn: [failing] });
      const attempt = async () => {
        await configure(r);
        await r.client.action('InstanceStart');
      };
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof FirecrackerApiError, String(error));
        assert.equal(error.request, failing);
        assert.equal(error.faultMessage, `injected failure for ${failing}`);
        assert.equal(error.code, 'FAILED_PRECONDITION');
        assert.ok(
          error.message.includes(`firecracker API ${failing} failed with HTTP 400: injected failure`),
          error.message,
        );
        return true;
      });
      assert.equal(r.api.state, 'Not started');
    });
  }

  it('refuses, as Firecracker does, a tap name over IFNAMSIZ and a malformed guest MAC', async (t) => {
    const r = await rig(t);
    await assert.rejects(
      r.client.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap-kindling-vm1' }),
      /PUT \/network-interfaces\/eth0 failed with HTTP 400: .*Invalid TAP name tap-kindling-vm1/,
    );
    await assert.rejects(
      r.client.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '02:fc:00:00:05' }),
      /invalid MAC address 02:fc:00:00:05/,
    );
  });

  it("refuses a body over Firecracker's 51200-byte API payload limit", async (t) => {
    const r = await rig(t);
    await assert.rejects(
      r.client.putMmds({ big: 'x'.repeat(51_200) }),
      /PUT \/mmds failed with HTTP 400: Request payload with size \d+ is larger than the limit of 51200/,
    );
  });

  it('flags a request the spec does not define', async (t) => {
    const r = await rig(t);
    await assert.rejects(
      r.client.request('PUT', '/no-such-resource', {}),
      /Invalid request method and\/or path/,
    );
    assert.match(r.api.violations.join('\n'), /does not define: PUT \/no-such-resource/);
  });

  it('reports an unreachable socket as unavailable, naming the request and socket', async () => {
    const client = new FirecrackerApiClient('/nonexistent/kindling-test.sock');
    try {
      await assert.rejects(client.getVersion(), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'UNAVAILABLE');
        assert.match(String(error), /GET \/version on \/nonexistent\/kindling-test\.sock failed/);
        return true;
      });
    } finally {
      await client.close();
    }
  });
});
