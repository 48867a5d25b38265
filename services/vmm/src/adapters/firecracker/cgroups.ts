/**
 * cgroup facts for the jailer: which version the host can use, how a VM's vCPUs and memory
 * translate into `--cgroup` values for that version, and which directories the jailer creates
 * (so delete can remove them: the jailer never does).
 */
import { readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupVersion } from './config.ts';

/** Where the controllers live on this host. */
export interface CgroupHost {
  /** Mount point of the unified (v2) hierarchy and the controllers it offers, when mounted. */
  readonly unified?: { readonly mountPoint: string; readonly controllers: readonly string[] };
  /** v1 controller name → its mount point (controllers sharing a mount map to the same path). */
  readonly v1: Readonly<Record<string, string>>;
}

/** CPU quota period: the kernel default, so v1 and v2 limits mean the same thing. */
export const CPU_PERIOD_US = 100_000;

export function parseCgroupMounts(procMounts: string): { unifiedMount?: string; v1: Record<string, string> } {
  const v1: Record<string, string> = {};
  let unifiedMount: string | undefined;
  for (const line of procMounts.split('\n')) {
    const [, mountPoint, fsType, options] = line.split(' ');
    if (!mountPoint || !options) continue;
    if (fsType === 'cgroup2') unifiedMount ??= mountPoint;
    if (fsType === 'cgroup') {
      for (const option of options.split(',')) {
        if (
          ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices', 'blkio', 'freezer', 'hugetlb'].includes(
            option,
          )
        )
          v1[option] = mountPoint;
      }
    }
  }
  return unifiedMount === undefined ? { v1 } : { unifiedMount, v1 };
}

export async function detectCgroupHost(procMountsPath = '/proc/mounts'): Promise<CgroupHost> {
  const { unifiedMount, v1 } = parseCgroupMounts(await readFile(procMountsPath, 'utf8'));
  if (unifiedMount === undefined) return { v1 };
  const controllers = await readFile(join(unifiedMount, 'cgroup.controllers'), 'utf8').then(
    (text) => text.trim().split(/\s+/).filter(Boolean),
    () => [],
  );
  return { unified: { mountPoint: unifiedMount, controllers }, v1 };
}

/** The controllers a VM's limits need. */
export function controllersFor(numaNode: number | undefined): string[] {
  return numaNode === undefined ? ['cpu', 'memory'] : ['cpu', 'memory', 'cpuset'];
}

/**
 * The version to pass to the jailer: the preferred one when the host offers every needed
 * controller there, otherwise the other one when it does (v1-only hosts like Debian with
 * systemd.unified_cgroup_hierarchy=0). Undefined when neither works.
 */
export function chooseCgroupVersion(
  host: CgroupHost,
  preferred: CgroupVersion,
  needed: readonly string[],
): CgroupVersion | undefined {
  const usable = (v: CgroupVersion) =>
    v === 2
      ? needed.every((c) => host.unified?.controllers.includes(c))
      : needed.every((c) => host.v1[c] !== undefined);
  if (usable(preferred)) return preferred;
  const other: CgroupVersion = preferred === 2 ? 1 : 2;
  return usable(other) ? other : undefined;
}

export interface VmResourceLimits {
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly memoryOverheadMib: number;
  readonly numaNode?: number;
  /** CPU list of the NUMA node (from /sys/devices/system/node/node<N>/cpulist), needed when numaNode is set. */
  readonly numaCpus?: string;
}

/** `--cgroup <file>=<value>` values for the VM, in the order the jailer should write them. */
export function cgroupLimits(version: CgroupVersion, limits: VmResourceLimits): string[] {
  const quotaUs = limits.vcpus * CPU_PERIOD_US;
  const memoryBytes = (limits.memoryMib + limits.memoryOverheadMib) * 1024 * 1024;
  const values =
    version === 2
      ? [`cpu.max=${quotaUs} ${CPU_PERIOD_US}`, `memory.max=${memoryBytes}`]
      : [
          `cpu.cfs_period_us=${CPU_PERIOD_US}`,
          `cpu.cfs_quota_us=${quotaUs}`,
          `memory.limit_in_bytes=${memoryBytes}`,
        ];
  if (limits.numaNode !== undefined) {
    // cpuset.mems before cpuset.cpus: a cpuset cgroup accepts tasks only once both are set.
    values.push(`cpuset.mems=${limits.numaNode}`, `cpuset.cpus=${limits.numaCpus ?? ''}`);
  }
  return values;
}

export async function readNumaCpus(node: number): Promise<string> {
  return (await readFile(`/sys/devices/system/node/node${node}/cpulist`, 'utf8')).trim();
}

/** The directories the jailer creates for the VM: `<controller mount>/<parent>/<id>` per hierarchy. */
export function jailCgroupDirs(
  host: CgroupHost,
  version: CgroupVersion,
  parentCgroup: string,
  jailId: string,
  controllers: readonly string[],
): string[] {
  if (version === 2) return host.unified ? [join(host.unified.mountPoint, parentCgroup, jailId)] : [];
  const mounts = new Set(controllers.map((c) => host.v1[c]).filter((m): m is string => m !== undefined));
  return [...mounts].map((m) => join(m, parentCgroup, jailId));
}

/** Every place a cgroup of this jail could be, whatever version was used: for cleanup without a record. */
export function allPossibleCgroupDirs(host: CgroupHost, parentCgroup: string, jailId: string): string[] {
  const mounts = new Set([...Object.values(host.v1), ...(host.unified ? [host.unified.mountPoint] : [])]);
  return [...mounts].map((m) => join(m, parentCgroup, jailId));
}

/** rmdir each cgroup directory (a cgroup is removed with rmdir, never rm -r); absent ones are fine. */
export async function removeCgroupDirs(dirs: readonly string[]): Promise<string[]> {
  const failures: string[] = [];
  for (const dir of dirs) {
    try {
      await rmdir(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') failures.push(`${dir}: ${code ?? String(error)}`);
    }
  }
  return failures;
}
