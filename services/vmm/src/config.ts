import { hostname } from 'node:os';
import { loadConfig, serverSettings, setting, type ConfigOf } from '@kindling/runtime';
import { firecrackerSettings } from './adapters/firecracker/index.ts';

const list = (description: string, defaults: string[]) => ({
  description,
  default: defaults,
  parse: (raw: string) =>
    raw
      .split(/[,:]/)
      .map((s) => s.trim())
      .filter(Boolean),
});

/** The vmm's settings: --state-dir or KINDLING_VMM_STATE_DIR, and so on. */
export const vmmSettings = {
  ...serverSettings(50053),
  hostName: setting.string(
    'name of this VM host in VM records and event subjects',
    hostname().split('.')[0] ?? 'localhost',
  ),
  stateDir: setting.string('where images, kernels and VM records live', '/var/lib/kindling/vmm'),
  cacheDir: setting.string(
    'kindling cache; cached base-OS builds under <dir>/baseos are registered at start',
    process.env.KINDLING_CACHE_DIR ?? '/var/cache/kindling',
  ),
  fetcherCacheDir: setting.optionalString(
    "the fetcher's --cache-dir when a fetcher runs on this host: WriteVmTransfer with from_fetcher_cache reads blobs there instead of receiving them",
  ),
  registerBaseOs: setting.boolean(
    'register the cached base-OS builds (debian:bookworm, debian:12, ...) at start',
    true,
  ),
  driver: setting.oneOf('hypervisor driver', ['qemu', 'firecracker'] as const, 'qemu'),
  accel: setting.oneOf(
    'qemu acceleration: auto uses KVM only where it can boot a stock guest',
    ['auto', 'kvm', 'tcg'] as const,
    'auto',
  ),
  qemuBinary: setting.string('qemu system emulator', 'qemu-system-x86_64'),
  stopTimeout: setting.durationMs(
    'how long StopVm waits for the guest to power off before killing it',
    30_000,
  ),
  network: setting.string(
    'CNI network (conflist name) VMs join when their spec names none; empty for none',
    '',
  ),
  cniConfDir: setting.string('CNI config dir holding the conflists', '/etc/cni/conf.d'),
  cniBinPath: list('CNI plugin dirs, searched in order (comma or colon separated)', [
    '/opt/cni/bin',
    '/usr/lib/cni',
  ]),
  cniCacheDir: setting.optionalString(
    'where CNI ADD results are kept for CHECK and DEL (default <state-dir>/cni)',
  ),
  cniHostNetns: setting.optionalString(
    "run the CNI plugins inside this netns path (where the bridge lives) instead of the vmm's own",
  ),
  netnsPrefix: setting.string('prefix of per-VM network namespace names', 'kindling-'),
  capacityVcpus: setting.integer(
    "vCPUs this host offers to VMs, as GetHostInfo reports them for placement (0: the machine's CPUs)",
    0,
    0,
  ),
  capacityMemory: setting.bytes(
    "memory this host offers to VMs, e.g. 16GiB, as GetHostInfo reports it for placement (0: the machine's)",
    0,
  ),
  ...firecrackerSettings,
};

export type VmmConfig = ConfigOf<typeof vmmSettings>;

export function loadVmmConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): VmmConfig {
  return loadConfig('KINDLING_VMM', vmmSettings, argv, env);
}
