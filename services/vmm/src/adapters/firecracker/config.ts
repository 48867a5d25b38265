/**
 * Settings of the Firecracker driver, with the same names as the seed's `build` flags
 * (`--binary-firecracker`, `--binary-jailer`). main.ts reads them with readFirecrackerConfig.
 */
import { FirecrackerDriverError } from './errors.ts';

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

/** One setting: its CLI flag (without `--`), its environment variable and what it means. */
export interface FirecrackerSetting {
  readonly key: keyof FirecrackerConfig;
  readonly flag: string;
  readonly env: string;
  readonly description: string;
}

const setting = (key: keyof FirecrackerConfig, flag: string, description: string): FirecrackerSetting => ({
  key,
  flag,
  env: `KINDLING_VMM_${flag.toUpperCase().replaceAll('-', '_')}`,
  description,
});

/** The flags and environment variables of the Firecracker driver, for main.ts and `--help`. */
export const firecrackerSettings: readonly FirecrackerSetting[] = [
  setting('firecrackerBinary', 'binary-firecracker', 'path of the firecracker binary'),
  setting('jailerBinary', 'binary-jailer', 'path of the jailer binary (same release as firecracker)'),
  setting('useJailer', 'firecracker-use-jailer', 'run firecracker through the jailer (true|false)'),
  setting('chrootBase', 'firecracker-chroot-base', 'jailer --chroot-base-dir; keep it short (108-byte socket path limit)'),
  setting('jailerUid', 'firecracker-uid', 'uid firecracker runs as inside the jail (non-root)'),
  setting('jailerGid', 'firecracker-gid', 'gid firecracker runs as inside the jail'),
  setting('cgroupVersion', 'firecracker-cgroup-version', 'preferred cgroup version 1|2 (falls back to 1 on v1-only hosts)'),
  setting('parentCgroup', 'firecracker-parent-cgroup', 'jailer --parent-cgroup for all VMs'),
  setting('numaNode', 'firecracker-numa-node', 'pin VMs to this NUMA node'),
  setting('kernelArgs', 'firecracker-kernel-args', 'kernel args put before the VM spec\'s own'),
  setting('daemonize', 'firecracker-daemonize', 'pass --daemonize to the jailer (console not captured)'),
  setting('resourceLimits', 'firecracker-resource-limits', 'comma-separated jailer --resource-limit values'),
  setting('memoryOverheadMib', 'firecracker-memory-overhead-mib', 'memory cgroup headroom above guest RAM'),
  setting('apiSocketTimeoutMs', 'firecracker-api-socket-timeout-ms', 'how long to wait for the API socket'),
  setting('killGraceMs', 'firecracker-kill-grace-ms', 'SIGTERM to SIGKILL delay after a graceful stop times out'),
  setting('logLevel', 'firecracker-log-level', 'Error|Warning|Info|Debug|Trace|Off'),
  setting('rootDriveRateLimiter', 'firecracker-root-drive-rate-limiter', 'JSON RateLimiter for the root drive'),
];

function invalid(flag: string, value: string, expected: string): never {
  throw new FirecrackerDriverError('INVALID_ARGUMENT', `--${flag}=${JSON.stringify(value)} is invalid: expected ${expected}`, {
    details: { flag, value },
  });
}

function parseInteger(flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min) invalid(flag, value, `an integer >= ${min}`);
  return Number(value);
}

function parseValue(s: FirecrackerSetting, value: string): unknown {
  switch (s.key) {
    case 'useJailer':
    case 'daemonize':
      if (value !== 'true' && value !== 'false') invalid(s.flag, value, 'true or false');
      return value === 'true';
    case 'jailerUid':
    case 'jailerGid':
    case 'numaNode':
      return parseInteger(s.flag, value, 0);
    case 'memoryOverheadMib':
    case 'apiSocketTimeoutMs':
    case 'killGraceMs':
      return parseInteger(s.flag, value, 1);
    case 'cgroupVersion':
      if (value !== '1' && value !== '2') invalid(s.flag, value, '1 or 2');
      return Number(value);
    case 'logLevel':
      if (!['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'].includes(value)) invalid(s.flag, value, 'Error|Warning|Info|Debug|Trace|Off');
      return value;
    case 'resourceLimits': {
      const limits = value.split(',').map((v) => v.trim()).filter((v) => v !== '');
      for (const l of limits) if (!/^(fsize|no-file)=\d+$/.test(l)) invalid(s.flag, value, 'fsize=<bytes> and/or no-file=<n>, comma-separated');
      return limits;
    }
    case 'rootDriveRateLimiter':
      try {
        const parsed: unknown = JSON.parse(value);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        return parsed;
      } catch {
        return invalid(s.flag, value, 'a JSON object like {"bandwidth":{"size":104857600,"refill_time":1000}}');
      }
    case 'parentCgroup':
      if (value === '' || value.startsWith('/') || value.split('/').includes('..')) invalid(s.flag, value, 'a relative cgroup path');
      return value;
    case 'chrootBase':
    case 'firecrackerBinary':
    case 'jailerBinary':
      if (!value.startsWith('/')) invalid(s.flag, value, 'an absolute path');
      return value;
    default:
      return value;
  }
}

/**
 * Parses the driver's settings from flag values (keyed by flag name without `--`), falling back to
 * defaults. Unknown keys are ignored so the caller can pass the vmm's whole flag set.
 */
export function parseFirecrackerConfig(values: Readonly<Record<string, string | undefined>>): FirecrackerConfig {
  const config: Record<string, unknown> = { ...defaultFirecrackerConfig };
  for (const s of firecrackerSettings) {
    const value = values[s.flag];
    if (value !== undefined) config[s.key] = parseValue(s, value);
  }
  return config as unknown as FirecrackerConfig;
}

/** Reads the settings from argv (`--flag value` or `--flag=value`) over environment variables over defaults. */
export function readFirecrackerConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): FirecrackerConfig {
  const values: Record<string, string | undefined> = {};
  for (const s of firecrackerSettings) values[s.flag] = env[s.env];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/s.exec(arg);
    if (!match?.[1] || !firecrackerSettings.some((s) => s.flag === match[1])) continue;
    if (match[2] !== undefined) values[match[1]] = match[2];
    else if (argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('--')) values[match[1]] = argv[++i];
    else values[match[1]] = 'true';
  }
  return parseFirecrackerConfig(values);
}
