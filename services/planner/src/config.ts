import { loadConfig, serverSettings, setting, type ConfigOf, type TlsFiles } from '@kindling/runtime';
import { vmmEndpointList } from './vmm-endpoints.ts';

export const plannerSettings = {
  ...serverSettings(50051),
  fetcherAddress: setting.string('fetcher address (host:port)', '127.0.0.1:50052'),
  vmmAddress: setting.string('vmm address (host:port) of the VM host that runs build VMs', '127.0.0.1:50053'),
  vmmHostName: setting.string('name of that VM host, for build records', 'local'),
  vmmAddresses: vmmEndpointList('VM hosts builds are placed on, comma-separated name=host:port or host:port (name defaults to the address); replaces --vmm-address and --vmm-host-name (default: none, those two)'),
  placementTimeout: setting.durationMs('how long a VM host may take to answer GetHostInfo when a build is placed; slower hosts are skipped', 2000),
  provisionerAddress: setting.string('provisioner address (host:port)', '127.0.0.1:50054'),
  clientTlsCa: setting.optionalString('PEM CA bundle that the other services\' certificates chain to (enables TLS to them)'),
  clientTlsCert: setting.optionalString('PEM client certificate presented to the other services (mTLS)'),
  clientTlsKey: setting.optionalString('PEM key of that client certificate'),
  sshReadyTimeout: setting.durationMs('how long a build VM may take to accept SSH', 180_000),
  stopTimeout: setting.durationMs('how long a build VM may take to power off before it is killed', 60_000),
  buildTimeout: setting.durationMs('default time limit of a build', 3_600_000),
  extraDiskBytes: setting.integer('disk added to a build VM beyond its base image size, in bytes', 2 * 1024 ** 3, 0),
  maxParallelStages: setting.integer('independent stages of one build run at once, each in its own VM', 2, 1),
  maxConcurrentBoots: setting.integer('VMs of one build booting at once; the stage with the most steps before it reads another stage boots first (a boot is CPU-bound: raise it on hosts with cores to spare)', 1, 1),
  transferDiskBytes: setting.integer('size of each build VM\'s transfer disk, a sparse read-only second disk that COPY files of 1 MiB and more reach the guest through instead of SSH (the files of one COPY up to this size; 0 = none: everything goes through SSH)', 8 * 1024 ** 3, 0),
  stateDir: setting.string('where build records and step-cache use times are kept when NATS is not configured (with NATS: the KV buckets kindling_builds and kindling_cache)', '/var/lib/kindling/planner'),
  cacheMaxBytes: setting.integer('size limit of the step cache in bytes (least recently used entries are evicted after each build; 0 = no limit)', 50 * 1024 ** 3, 0),
};

export type PlannerConfig = ConfigOf<typeof plannerSettings>;

export function loadPlannerConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): PlannerConfig {
  return loadConfig('KINDLING_PLANNER', plannerSettings, argv, env);
}

export function clientTls(config: PlannerConfig): TlsFiles {
  return { caPath: config.clientTlsCa, certPath: config.clientTlsCert, keyPath: config.clientTlsKey };
}
