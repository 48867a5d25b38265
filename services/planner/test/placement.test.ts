/**
 * Multi-host placement. The rule (most free memory, then vCPUs, configured order among equals), the
 * image check and --vmm-addresses, as units; then for real: two vmm processes over their own temp
 * state dirs, one offering less room (--capacity-vcpus/--capacity-memory), a fetcher and planner
 * processes started with --vmm-addresses. The builds are FROM scratch (assembled by the vmm, no VM
 * boot); which host holds the image is asked of each vmm (ListImages).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { BuildServiceClient, type Build, type CreateBuildResponse, type GetBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { VmmServiceClient, type GetHostInfoResponse, type ListImagesResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { ConfigError, createLogger, DomainError, unaryCall } from '@kindling/runtime';
import { freePort } from '@kindling/runtime/testing';
import { importImage, makeExt4 } from '../../../cli/test/support/cli-services.ts';
import { startServiceProcess, stopServiceProcess, type StartedService } from '../../../cli/src/local-suite.ts';
import { loadVmmConfig } from '../../vmm/src/config.ts';
import { needsRootAnd } from '../../vmm/test/support/vmm-harness.ts';
import { VmHostPool } from '../src/adapters/placement/vm-host-pool.ts';
import { loadPlannerConfig } from '../src/config.ts';
import { freeCapacity, missingImages, rankByFreeCapacity, type HostCapacity } from '../src/domain/host-ranking.ts';
import { BucketBuildRecords } from '../src/records/build-records.ts';
import { LeftoverSweeper } from '../src/records/build-recovery.ts';
import { vmmEndpointsOf } from '../src/vmm-endpoints.ts';

const GiB = 1024 ** 3;
const host = (name: string, capacity: Partial<HostCapacity>) => ({
  name,
  capacity: { cpus: 8, memoryBytes: 16 * GiB, vcpusAllocated: 0, memoryAllocatedMib: 0, ...capacity },
});

describe('the placement rule', () => {
  it('ranks by free memory, then free vCPUs, then the configured order', () => {
    const ranked = rankByFreeCapacity([
      host('busy', { memoryBytes: 64 * GiB, memoryAllocatedMib: 60 * 1024 }), // 4 GiB free
      host('few-cpus', { cpus: 2 }), // 16 GiB, 2 vCPUs
      host('first', {}), // 16 GiB, 8 vCPUs
      host('second', {}),
      host('over', { cpus: 1, vcpusAllocated: 4, memoryBytes: GiB, memoryAllocatedMib: 2048 }), // negative
    ]);
    assert.deepEqual(ranked.map((h) => h.name), ['first', 'second', 'few-cpus', 'busy', 'over']);
    assert.deepEqual(freeCapacity(host('x', { cpus: 4, vcpusAllocated: 6, memoryAllocatedMib: 1024 }).capacity), { vcpus: -2, memoryBytes: 15 * GiB });
  });

  it('finds the images a host lacks, by name:tag or alias, "name" meaning name:latest', () => {
    const images = [{ name: 'debian', tag: 'bookworm', aliases: ['debian:12'] }, { name: 'app', tag: 'latest', aliases: [] }];
    assert.deepEqual(missingImages(['debian:12', 'app', 'debian:bookworm'], images), []);
    assert.deepEqual(missingImages(['debian:11', 'app:2', 'debian:11'], images), ['debian:11', 'app:2']);
  });
});

describe('planner and vmm placement settings', () => {
  it('reads --vmm-addresses as name=host:port or host:port, and --vmm-address as a one-entry list', () => {
    const config = loadPlannerConfig([], { KINDLING_PLANNER_VMM_ADDRESSES: 'a=10.0.0.1:50053, 10.0.0.2:7000,[::1]:50053' });
    assert.deepEqual(vmmEndpointsOf(config), [
      { name: 'a', address: '10.0.0.1:50053' },
      { name: '10.0.0.2:7000', address: '10.0.0.2:7000' },
      { name: '[::1]:50053', address: '[::1]:50053' },
    ]);
    assert.deepEqual(vmmEndpointsOf(loadPlannerConfig(['--vmm-address=vm1:50053', '--vmm-host-name=vm1'], {})), [{ name: 'vm1', address: 'vm1:50053' }]);
    assert.deepEqual(vmmEndpointsOf(loadPlannerConfig([], {})), [{ name: 'local', address: '127.0.0.1:50053' }]);
  });

  it('refuses bad entries naming the setting', () => {
    for (const [raw, why] of [
      ['a=10.0.0.1', /"a=10.0.0.1": expected host:port/],
      ['10.0.0.1:99999', /port 1 to 65535/],
      ['a b=h:1', /a host name is/],
      ['x=h:1,x=g:2', /"x" is given twice/],
    ] as const) {
      assert.throws(
        () => loadPlannerConfig([`--vmm-addresses=${raw}`], {}),
        (e: Error) => e instanceof ConfigError && e.message.includes('--vmm-addresses (KINDLING_PLANNER_VMM_ADDRESSES)') && why.test(e.message),
        raw,
      );
    }
  });

  it('lets the vmm offer less than the machine has', () => {
    const config = loadVmmConfig(['--capacity-vcpus=2', '--capacity-memory=3GiB'], {});
    assert.equal(config.capacityVcpus, 2);
    assert.equal(config.capacityMemory, 3 * GiB);
    assert.deepEqual([loadVmmConfig([], {}).capacityVcpus, loadVmmConfig([], {}).capacityMemory], [0, 0], "0: the machine's");
  });
});

const skip = needsRootAnd(['mkfs.ext4', 'debugfs']);

describe('builds placed across two real vmm hosts', { skip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'kindling-placement-'));
  const services: StartedService[] = [];
  const clients: { close(): void }[] = [];
  let big: VmmServiceClient;
  let small: VmmServiceClient;
  const addresses = { big: '', small: '', gone: '' };
  let fetcher = '';

  async function start(name: string, args: string[]): Promise<string> {
    const service = await startServiceProcess(name, args, { env: { KINDLING_LOG_LEVEL: 'info' } });
    services.push(service);
    return service.address;
  }

  function vmmArgs(name: string, capacity: string[]): string[] {
    const dir = join(work, name);
    return [
      `--state-dir=${join(dir, 'state')}`,
      `--cache-dir=${join(dir, 'no-cache')}`,
      '--register-base-os=false',
      `--cni-conf-dir=${join(dir, 'cni-conf')}`,
      `--cni-bin-path=${join(dir, 'no-cni-plugins')}`,
      `--netns-prefix=kindling-placetest-`,
      `--host-name=${name}`,
      ...capacity,
    ];
  }

  async function planner(vmmAddresses: string): Promise<BuildServiceClient> {
    const provisioner = `127.0.0.1:${await freePort()}`;
    const stateDir = mkdtempSync(join(work, 'planner-'));
    const address = await start('planner', [`--state-dir=${stateDir}`, `--fetcher-address=${fetcher}`, `--provisioner-address=${provisioner}`, `--vmm-addresses=${vmmAddresses}`]);
    const client = new BuildServiceClient(address, credentials.createInsecure());
    clients.push(client);
    return client;
  }

  async function build(client: BuildServiceClient, dockerfile: string, tag: string): Promise<Build> {
    const context = mkdtempSync(join(work, 'context-'));
    writeFileSync(join(context, 'Dockerfile'), dockerfile);
    writeFileSync(join(context, 'hello.txt'), `hello from ${tag}\n`);
    const request = { source: { source: { $case: 'contextPath' as const, value: context }, dockerfilePath: '' }, tag, buildArgs: {}, target: '', noCache: false, secrets: [], labels: {}, keepStages: false };
    const { build: created } = await unaryCall<CreateBuildResponse>('planner', (cb) => client.createBuild(request, cb));
    for (;;) {
      const { build: now } = await unaryCall<GetBuildResponse>('planner', (cb) => client.getBuild({ buildId: created!.id }, cb));
      if ([BuildState.BUILD_STATE_SUCCEEDED, BuildState.BUILD_STATE_FAILED, BuildState.BUILD_STATE_CANCELLED].includes(now!.state)) return now!;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const imagesOn = async (vmm: VmmServiceClient): Promise<string[]> =>
    (await unaryCall<ListImagesResponse>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb))).images.map((i) => `${i.name}:${i.tag}`);

  before(async () => {
    for (const name of ['big', 'small']) for (const sub of ['cni-conf', 'no-cni-plugins']) mkdirSync(join(work, name, sub), { recursive: true });
    addresses.gone = `127.0.0.1:${await freePort()}`;
    [addresses.big, addresses.small, fetcher] = await Promise.all([
      start('vmm', vmmArgs('big', ['--capacity-vcpus=64', '--capacity-memory=512GiB'])),
      start('vmm', vmmArgs('small', ['--capacity-vcpus=1', '--capacity-memory=256MiB'])),
      start('fetcher', [`--cache-dir=${join(work, 'fetcher-cache')}`]),
    ]);
    big = new VmmServiceClient(addresses.big, credentials.createInsecure());
    small = new VmmServiceClient(addresses.small, credentials.createInsecure());
    clients.push(big, small);
    // an image only the small host has, for builds that need it
    await importImage({ address: addresses.small, stateDir: '', client: small }, makeExt4(work, 'stub'), 'stub:1');
  });

  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(services.map((s) => stopServiceProcess(s)));
    rmSync(work, { recursive: true, force: true });
  });

  it('the vmm reports the capacity it was given', async () => {
    const info = await unaryCall<GetHostInfoResponse>('vmm', (cb) => small.getHostInfo({}, cb));
    assert.equal(info.cpus, 1);
    assert.equal(info.memoryBytes, String(256 * 1024 ** 2));
  });

  it('places builds on the host with more room, unless only the other has the image they need', async () => {
    const client = await planner(`small=${addresses.small},big=${addresses.big}`);
    const roomy = await build(client, 'FROM scratch\nCOPY hello.txt /hello.txt\n', 'placed/roomy:1');
    assert.equal(roomy.state, BuildState.BUILD_STATE_SUCCEEDED, JSON.stringify(roomy.error));
    assert.equal(roomy.vmmHost, 'big', 'the record names the host');
    assert.ok((await imagesOn(big)).includes('placed/roomy:1'));
    assert.ok(!(await imagesOn(small)).includes('placed/roomy:1'));

    const needsStub = await build(client, 'FROM scratch\nCOPY --from=stub:1 /sbin/init /init\nCOPY hello.txt /\n', 'placed/stub:1');
    assert.equal(needsStub.state, BuildState.BUILD_STATE_SUCCEEDED, JSON.stringify(needsStub.error));
    assert.equal(needsStub.vmmHost, 'small', 'big lacks stub:1');
    assert.ok((await imagesOn(small)).includes('placed/stub:1'));
    assert.ok(!(await imagesOn(big)).includes('placed/stub:1'));
  });

  it('builds on the hosts that answer when one address is unreachable, and fails naming every host when none does', async () => {
    const client = await planner(`gone=${addresses.gone},${addresses.small}`);
    const done = await build(client, 'FROM scratch\nCOPY hello.txt /hello.txt\n', 'placed/survivor:1');
    assert.equal(done.state, BuildState.BUILD_STATE_SUCCEEDED, JSON.stringify(done.error));
    assert.equal(done.vmmHost, addresses.small, 'a host given as host:port is named by its address');
    assert.ok((await imagesOn(small)).includes('placed/survivor:1'));

    const nowhere = await build(await planner(`gone=${addresses.gone}`), 'FROM scratch\nCOPY hello.txt /\n', 'placed/nowhere:1');
    assert.equal(nowhere.state, BuildState.BUILD_STATE_FAILED);
    assert.equal(nowhere.error?.code, 'UNAVAILABLE');
    assert.match(nowhere.error?.message ?? '', new RegExp(`gone \\(${addresses.gone}\\): unreachable`));
  });

  it('refuses a build no reachable host can take, saying why for each host', async () => {
    const pool = new VmHostPool(
      [{ name: 'big', address: addresses.big }, { name: 'gone', address: addresses.gone }],
      { timeoutMs: 2000, log: createLogger('placement-test', 'silent') },
    );
    try {
      await assert.rejects(pool.place({ images: ['stub:1'] }, new AbortController().signal), (e: DomainError) => {
        assert.equal(e.code, 'FAILED_PRECONDITION');
        assert.match(e.message, /big \(127\.0\.0\.1:\d+\): lacks the image stub:1/);
        assert.match(e.message, /gone \(127\.0\.0\.1:\d+\): unreachable: /);
        return true;
      });
      assert.deepEqual((await pool.reachableHosts(new AbortController().signal)).map((h) => h.hostName), ['big']);
    } finally {
      pool.close();
    }
  });

  it('recovery removes a lost build\'s leftovers on the host its record names', async () => {
    await importImage({ address: addresses.small, stateDir: '', client: small }, makeExt4(work, 'stage'), 'kindling-intermediate/lost1:stage-0');
    const records = new BucketBuildRecords();
    await records.put({
      id: 'lost1',
      state: BuildState.BUILD_STATE_FAILED,
      imageRef: '',
      vmId: '',
      vmmHost: 'small',
      stepsDone: 0,
      stepsTotal: 1,
      lastSequence: '2',
    } as unknown as Build);
    const pool = new VmHostPool(
      [{ name: 'big', address: addresses.big }, { name: 'small', address: addresses.small }],
      { timeoutMs: 2000, log: createLogger('placement-test', 'silent') },
    );
    try {
      const swept = await new LeftoverSweeper(pool.hosts, { closeSession: async () => {} }, records, createLogger('recovery-test', 'silent')).sweep(new AbortController().signal);
      assert.deepEqual(swept.images, ['kindling-intermediate/lost1:stage-0']);
      assert.ok(!(await imagesOn(small)).includes('kindling-intermediate/lost1:stage-0'));
    } finally {
      pool.close();
    }
  });
});
