/**
 * Settings of the Firecracker driver, with the same names as the seed's `build` flags
 * (`--binary-firecracker`, `--binary-jailer`). main.ts spreads firecrackerSettings into the vmm's settings
 * and turns the loaded values into a FirecrackerConfig with firecrackerConfigFrom.
 */
import { loadConfig, setting, type ConfigOf, type Setting } from '@kindling/runtime';

export type CgroupVersion = 1 | 2;

/** A Firecracker token bucket (RateLimiter.bandwidth / .ops in the API spec). */
export interface TokenBucket {
  readonly size: number;
  readonly refill_time: number;
  readonly one_time_burst?: number;
}

export interface DriveRateLimiter {
  readonly bandwidth?: TokenBucket;
  readonly ops?: TokenBucket;
}

export interface FirecrackerConfig {
  readonly firecrackerBinary: string;
  readonly jailerBinary: string;
  /** Run Firecracker through the jailer (chroot, uid/gid drop, cgroups). Off only for development hosts. */
  readonly useJailer: boolean;
  readonly chrootBase: string;
  readonly jailerUid: number;
  readonly jailerGid: number;
  /** Preferred cgroup version; on a host without usable v2 controllers the driver falls back to v1. */
  readonly cgroupVersion: CgroupVersion;
  readonly parentCgroup: string;
  /** Pin VMs to one NUMA node (cpuset.mems + that node's cpuset.cpus). */
  readonly numaNode?: number;
  /** Driver-specific kernel args, put before the lifecycle core's own (later arguments win). */
  readonly kernelArgs: string;
  /** Pass --daemonize to the jailer: stdio goes to /dev/null, so the serial console is not captured. */
  readonly daemonize: boolean;
  /** `--resource-limit` values, e.g. `no-file=2048`. */
  readonly resourceLimits: readonly string[];
  /** Host memory allowed above the guest's RAM in the memory cgroup (VMM, device emulation, page cache). */
  readonly memoryOverheadMib: number;
  readonly apiSocketTimeoutMs: number;
  /** Time between SIGTERM and SIGKILL once a graceful stop has timed out. */
  readonly killGraceMs: number;
  readonly logLevel: 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';
  readonly rootDriveRateLimiter?: DriveRateLimiter;
}

export const defaultFirecrackerConfig: FirecrackerConfig = {
  firecrackerBinary: '/usr/local/bin/firecracker',
  jailerBinary: '/usr/local/bin/jailer',
  useJailer: true,
  chrootBase: '/srv/jailer',
  jailerUid: 10_000,
  jailerGid: 10_000,
  cgroupVersion: 2,
  parentCgroup: 'kindling',
  kernelArgs: 'console=ttyS0 reboot=k panic=1 pci=off',
  daemonize: false,
  resourceLimits: ['no-file=2048'],
  memoryOverheadMib: 128,
  apiSocketTimeoutMs: 10_000,
  killGraceMs: 3_000,
  logLevel: 'Info',
};

const pathSetting = (description: string, defaultValue: string): Setting<string> => ({
  description,
  default: defaultValue,
  parse(raw) {
    if (!raw.startsWith('/')) throw new Error('expected an absolute path');
    return raw;
  },
});

const optional = <T>(description: string, parse: (raw: string) => T): Setting<T | undefined> => ({
  description,
  default: undefined,
  parse: (raw) => (raw === '' ? undefined : parse(raw)),
});

const d = defaultFirecrackerConfig;

/**
 * The driver's settings in the runtime's loadConfig form: spread into the vmm's settings so they
 * read `--binary-firecracker` / KINDLING_VMM_BINARY_FIRECRACKER and so on, then pass the loaded
 * config to firecrackerConfigFrom.
 */
export const firecrackerSettings = {
  binaryFirecracker: pathSetting('path of the firecracker binary', d.firecrackerBinary),
  binaryJailer: pathSetting('path of the jailer binary (same release as firecracker)', d.jailerBinary),
  firecrackerUseJailer: setting.boolean(
    'run firecracker through the jailer (chroot, uid/gid, cgroups)',
    d.useJailer,
  ),
  firecrackerChrootBase: pathSetting(
    'jailer --chroot-base-dir; keep it short (108-byte socket path limit)',
    d.chrootBase,
  ),
  firecrackerUid: setting.integer('uid firecracker runs as in the jail (non-root)', d.jailerUid, 0),
  firecrackerGid: setting.integer('gid firecracker runs as in the jail', d.jailerGid, 0),
  firecrackerCgroupVersion: setting.oneOf(
    'preferred cgroup version (falls back to 1 on v1-only hosts)',
    ['1', '2'] as const,
    '2',
  ),
  firecrackerParentCgroup: {
    description: 'jailer --parent-cgroup for all VMs',
    default: d.parentCgroup,
    parse(raw: string) {
      // The jailer refuses a root, "." or ".." component.
      if (raw === '' || raw.startsWith('/') || raw.split('/').some((c) => c === '.' || c === '..'))
        throw new Error('expected a relative cgroup path');
      return raw;
    },
  } satisfies Setting<string>,
  firecrackerNumaNode: optional(
    "pin VMs to this NUMA node (cpuset.mems and the node's cpuset.cpus)",
    (raw) => {
      if (!/^\d+$/.test(raw)) throw new Error('expected a NUMA node number');
      return Number(raw);
    },
  ),
  firecrackerKernelArgs: setting.string("kernel args put before the VM spec's own", d.kernelArgs),
  firecrackerDaemonize: setting.boolean(
    'pass --daemonize to the jailer (the serial console is then not captured)',
    d.daemonize,
  ),
  firecrackerResourceLimits: {
    description: 'comma-separated jailer --resource-limit values (fsize=<bytes>, no-file=<n>)',
    default: d.resourceLimits,
    parse(raw: string) {
      const limits = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      for (const l of limits)
        if (!/^(fsize|no-file)=\d+$/.test(l)) throw new Error(`"${l}" is not fsize=<bytes> or no-file=<n>`);
      return limits;
    },
  } satisfies Setting<readonly string[]>,
  firecrackerMemoryOverheadMib: setting.integer(
    'memory cgroup headroom above guest RAM, MiB',
    d.memoryOverheadMib,
    0,
  ),
  firecrackerApiSocketTimeout: setting.durationMs(
    'how long to wait for the API socket after starting',
    d.apiSocketTimeoutMs,
  ),
  firecrackerKillGrace: setting.durationMs(
    'SIGTERM to SIGKILL delay once a graceful stop timed out',
    d.killGraceMs,
  ),
  firecrackerLogLevel: setting.oneOf(
    'firecracker log level',
    ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'] as const,
    d.logLevel,
  ),
  firecrackerRootDriveRateLimiter: optional(
    'JSON RateLimiter for the root drive, e.g. {"bandwidth":{"size":104857600,"refill_time":1000}}',
    (raw) => {
      return parseRateLimiter(JSON.parse(raw));
    },
  ),
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A RateLimiter as the API spec defines it (Firecracker refuses unknown fields): `bandwidth` and/or
 * `ops` token buckets of non-negative integers `size`, `refill_time` and optional `one_time_burst`.
 */
export function parseRateLimiter(parsed: unknown): DriveRateLimiter {
  if (!isObject(parsed)) throw new Error('expected a JSON object');
  const limiter: { bandwidth?: TokenBucket; ops?: TokenBucket } = {};
  for (const [name, bucket] of Object.entries(parsed)) {
    if (name !== 'bandwidth' && name !== 'ops')
      throw new Error(`unknown field "${name}" (a RateLimiter has bandwidth and ops)`);
    if (!isObject(bucket)) throw new Error(`${name} must be a token bucket object`);
    for (const [field, value] of Object.entries(bucket)) {
      if (!['size', 'refill_time', 'one_time_burst'].includes(field))
        throw new Error(
          `unknown field "${name}.${field}" (a token bucket has size, refill_time, one_time_burst)`,
        );
      if (!Number.isSafeInteger(value) || (value as number) < 0)
        throw new Error(`${name}.${field} must be a non-negative integer`);
    }
    if (bucket.size === undefined || bucket.refill_time === undefined)
      throw new Error(`${name} needs size and refill_time`);
    limiter[name] = bucket as unknown as TokenBucket;
  }
  return limiter;
}

export type FirecrackerSettingValues = ConfigOf<typeof firecrackerSettings>;

export function firecrackerConfigFrom(v: FirecrackerSettingValues): FirecrackerConfig {
  return {
    firecrackerBinary: v.binaryFirecracker,
    jailerBinary: v.binaryJailer,
    useJailer: v.firecrackerUseJailer,
    chrootBase: v.firecrackerChrootBase,
    jailerUid: v.firecrackerUid,
    jailerGid: v.firecrackerGid,
    cgroupVersion: v.firecrackerCgroupVersion === '1' ? 1 : 2,
    parentCgroup: v.firecrackerParentCgroup,
    ...(v.firecrackerNumaNode === undefined ? {} : { numaNode: v.firecrackerNumaNode }),
    kernelArgs: v.firecrackerKernelArgs,
    daemonize: v.firecrackerDaemonize,
    resourceLimits: v.firecrackerResourceLimits,
    memoryOverheadMib: v.firecrackerMemoryOverheadMib,
    apiSocketTimeoutMs: v.firecrackerApiSocketTimeout,
    killGraceMs: v.firecrackerKillGrace,
    logLevel: v.firecrackerLogLevel,
    ...(v.firecrackerRootDriveRateLimiter === undefined
      ? {}
      : { rootDriveRateLimiter: v.firecrackerRootDriveRateLimiter }),
  };
}

/** Reads only the driver's settings (tests, tools); the vmm reads them as part of its own settings. */
export function loadFirecrackerConfig(
  argv: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): FirecrackerConfig {
  return firecrackerConfigFrom(loadConfig('KINDLING_VMM', firecrackerSettings, argv, env));
}
