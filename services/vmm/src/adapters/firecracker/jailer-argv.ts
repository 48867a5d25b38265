/**
 * The jailer command line, exactly as jailer.md prescribes it. Pure: the driver decides the
 * values, this only spells them.
 */
import { realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { FirecrackerDriverError } from './errors.ts';
import type { CgroupVersion } from './config.ts';

export interface JailerInvocation {
  readonly jailId: string;
  readonly execFile: string;
  readonly uid: number;
  readonly gid: number;
  readonly chrootBase: string;
  readonly netnsPath?: string;
  readonly cgroupVersion: CgroupVersion;
  /** `<cgroup_file>=<value>` entries. */
  readonly cgroups: readonly string[];
  readonly parentCgroup: string;
  /** `<resource>=<value>` entries. */
  readonly resourceLimits: readonly string[];
  readonly daemonize: boolean;
  /** Passed to Firecracker after `--`, paths relative to the jail root. */
  readonly firecrackerArgs: readonly string[];
}

const JAIL_ID = /^[A-Za-z0-9-]{1,64}$/;

/** The jailer accepts alphanumerics and hyphens, at most 64 characters. */
export function assertValidJailId(id: string): void {
  if (!JAIL_ID.test(id)) {
    throw new FirecrackerDriverError(
      'INVALID_ARGUMENT',
      `VM id ${JSON.stringify(id)} cannot be a jailer --id: it must be 1-64 characters of letters, digits and hyphens`,
      { details: { vmId: id } },
    );
  }
}

/** Firecracker's own arguments: the API socket inside the jail. Logger and metrics go through the API. */
export function firecrackerArgs(apiSocket: string): string[] {
  return ['--api-sock', apiSocket];
}

export function buildJailerArgv(inv: JailerInvocation): string[] {
  assertValidJailId(inv.jailId);
  // prettier-ignore
  const argv = [
    '--id', inv.jailId,
    '--exec-file', inv.execFile,
    '--uid', String(inv.uid),
    '--gid', String(inv.gid),
    '--chroot-base-dir', inv.chrootBase,
  ];
  if (inv.netnsPath !== undefined) argv.push('--netns', inv.netnsPath);
  argv.push('--cgroup-version', String(inv.cgroupVersion));
  for (const cgroup of inv.cgroups) argv.push('--cgroup', cgroup);
  argv.push('--parent-cgroup', inv.parentCgroup);
  for (const limit of inv.resourceLimits) argv.push('--resource-limit', limit);
  if (inv.daemonize) argv.push('--daemonize');
  argv.push('--', ...inv.firecrackerArgs);
  return argv;
}

/** `<exec_file_name>`: the jailer names the jail directory and the default parent cgroup after it. */
export function execFileName(execFile: string): string {
  return basename(execFile);
}

/**
 * The exec file as the jailer sees it: it canonicalizes `--exec-file` (a release installed as a
 * `firecracker` symlink to `firecracker-v1.x-x86_64` is jailed under `<base>/firecracker-v1.x-x86_64/`)
 * and refuses a file name that does not contain "firecracker". A missing binary resolves to itself
 * (the launch's preflight names the setting).
 */
export async function resolveExecFile(execFile: string): Promise<{ path: string; name: string }> {
  const path = await realpath(execFile).catch(() => execFile);
  const name = execFileName(path);
  if (!name.includes('firecracker')) {
    throw new FirecrackerDriverError(
      'FAILED_PRECONDITION',
      `--binary-firecracker ${execFile}${path === execFile ? '' : ` (resolves to ${path})`}: the jailer refuses an exec file whose name does not contain "firecracker"; rename the binary`,
      { details: { execFile, resolved: path } },
    );
  }
  return { path, name };
}
