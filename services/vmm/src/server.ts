import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VmmServiceService } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import {
  createEventBus,
  startGrpcService,
  type EventBus,
  type Logger,
  type RunningGrpcService,
} from '@kindling/runtime';
import { CniNetwork } from './adapters/cni/cni-network.ts';
import { createNetns, deleteNetns, netnsExists, netnsPath } from './adapters/cni/netns.ts';
import { KINDLING_PLUGIN_DIR } from './adapters/cni/plugin-exec.ts';
import { BusVmEventPublisher } from './adapters/events/bus-publisher.ts';
import { E2fsprogsExt4Disk } from './adapters/ext4/ext4-disk.ts';
import { FirecrackerDriver, firecrackerConfigFrom } from './adapters/firecracker/index.ts';
import { FsImageStore } from './adapters/fs/image-store.ts';
import { FsKernelStore } from './adapters/fs/kernel-store.ts';
import { SequenceFile } from './adapters/fs/sequence-file.ts';
import { FsVmRecordStore } from './adapters/fs/vm-record-store.ts';
import { registerCachedBaseOs } from './adapters/fs/base-os-cache.ts';
import { localHostFacts } from './adapters/host/host-facts.ts';
import { vmmGrpcImplementation } from './adapters/grpc/vmm-grpc.ts';
import { AccelerationProbe } from './adapters/qemu/acceleration.ts';
import { QemuDriver } from './adapters/qemu/qemu-driver.ts';
import { SshKeygenHostKeys } from './adapters/ssh-keygen/host-key.ts';
import type { VmmConfig } from './config.ts';
import { ImageCatalog } from './domain/image-catalog.ts';
import { reconcileVms } from './domain/reconcile.ts';
import { VmEventHub } from './domain/vm-event-hub.ts';
import { VmHost } from './domain/vm-host.ts';
import { VmQueries } from './domain/vm-queries.ts';
import type { HypervisorDriver } from './ports/hypervisor.ts';
import { fetcherCacheBlobs } from './adapters/fs/fetcher-cache-blobs.ts';
import type { NetnsPort } from './ports/netns.ts';

export const vmmServiceName = 'kindling.vmm.v1.VmmService';

export interface VmmServiceDeps {
  readonly logger: Logger;
  /** Event bus to publish on; by default one is made from config.natsUrl (closed on shutdown). */
  readonly bus?: EventBus;
}

export interface RunningVmm extends RunningGrpcService {
  readonly host: VmHost;
  readonly queries: VmQueries;
  readonly catalog: ImageCatalog;
}

const namedNetns: NetnsPort = {
  async ensure(name) {
    return (await netnsExists(name)) ? netnsPath(name) : createNetns(name);
  },
  remove: deleteNetns,
};

/**
 * Wires the vmm: stores under the state dir, ext4 tools, CNI networks, the hypervisor driver and
 * the lifecycle core; registers cached base OSes, reconciles VM records left by an earlier run,
 * then serves VmmService. shutdown() leaves running VMs running (the next start re-adopts them).
 */
export async function startVmmService(config: VmmConfig, deps: VmmServiceDeps): Promise<RunningVmm> {
  const log = deps.logger;
  // made now, not with the first image: GetHostInfo reports the free space of its filesystem
  await mkdir(config.stateDir, { recursive: true });
  const bus = deps.bus ?? (await createEventBus(config.natsUrl, log));
  const acceleration = new AccelerationProbe(config.accel);
  const hypervisor: HypervisorDriver =
    config.driver === 'firecracker'
      ? new FirecrackerDriver(firecrackerConfigFrom(config), { log })
      : new QemuDriver({
          acceleration,
          qemuBinary: config.qemuBinary,
          log: (message, fields) => log.info(fields ?? {}, message),
        });
  const cniCacheDir = config.cniCacheDir ?? join(config.stateDir, 'cni');
  const images = new FsImageStore(join(config.stateDir, 'images'));
  await images.sweep();
  const disk = new E2fsprogsExt4Disk(join(config.stateDir, 'scratch'));
  await disk.sweepScratch();
  const events = new VmEventHub(
    config.hostName,
    new BusVmEventPublisher(bus),
    new SequenceFile(join(config.stateDir, 'event-sequence')),
    (error) => log.warn({ err: error }, 'publishing a VM event failed'),
  );
  await events.init();
  const host = new VmHost({
    host: config.hostName,
    images,
    kernels: new FsKernelStore(join(config.stateDir, 'kernels')),
    records: new FsVmRecordStore(join(config.stateDir, 'vms')),
    disk,
    hostKeys: new SshKeygenHostKeys(),
    networks: async (networkName) => {
      const network = new CniNetwork({
        networkName,
        confDir: config.cniConfDir,
        binDirs: [...config.cniBinPath, KINDLING_PLUGIN_DIR],
        cacheDir: cniCacheDir,
        ...(config.cniHostNetns ? { hostNetnsPath: config.cniHostNetns } : {}),
      });
      await network.configList();
      return network;
    },
    netns: namedNetns,
    netnsPrefix: config.netnsPrefix,
    ...(config.fetcherCacheDir ? { fetcherBlob: fetcherCacheBlobs(config.fetcherCacheDir) } : {}),
    hypervisor,
    events,
    log,
    stopTimeoutMs: config.stopTimeout,
    defaultNetwork: config.network,
  });
  const catalog = new ImageCatalog(host);
  const queries = new VmQueries(host);
  if (config.registerBaseOs) await registerCachedBaseOs(catalog, config.cacheDir, log);
  await reconcileVms(host);
  const running = await startGrpcService({
    name: 'vmm',
    host: config.host,
    port: config.port,
    tls: { certPath: config.tlsCert, keyPath: config.tlsKey, caPath: config.tlsCa },
    insecure: config.insecure,
    logger: log,
    services: [
      {
        name: vmmServiceName,
        definition: VmmServiceService,
        implementation: vmmGrpcImplementation(
          host,
          queries,
          catalog,
          localHostFacts({
            stateDir: config.stateDir,
            capacityVcpus: config.capacityVcpus,
            capacityMemoryBytes: config.capacityMemory,
            hypervisorVersionCommand:
              config.driver === 'qemu'
                ? [config.qemuBinary, '--version']
                : [config.binaryFirecracker, '--version'],
            accel: async () => (config.driver === 'qemu' ? (await acceleration.resolve()).accel : 'kvm'),
            version: '0.1.0',
          }),
        ),
      },
    ],
  });
  return {
    ...running,
    host,
    queries,
    catalog,
    async shutdown(graceMs?: number) {
      await running.shutdown(graceMs);
      host.detachAll();
      if (!deps.bus) await bus.close();
    },
  };
}
