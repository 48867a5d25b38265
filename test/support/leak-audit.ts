/**
 * The one leak auditor every fault test uses: what a build can leave on a VM host, read from the
 * host itself (and the vmm), so "nothing left" is one assertion. Run inside the test's sandbox
 * netns: the build VMs' veths and taps live there, their netns carry the suite's prefix.
 */
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmmServiceClient, ListImagesResponse, ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';

export interface HostLeaks {
  /** VMs the vmm still has, as "id build". */
  vms: string[];
  /** Intermediate stage images and snapshot staging the vmm still has. */
  images: string[];
  netns: string[];
  /** CNI host-local leases (one file per address). */
  leases: string[];
  /** veth and tun/tap devices left in the sandbox netns. */
  links: string[];
  /** qemu / firecracker / jailer processes that name the suite's work dir. */
  processes: string[];
  /** VM directories, image staging directories and temp files under the suite's state dirs. */
  files: string[];
}

export interface AuditTarget {
  vmm: VmmServiceClient;
  workDir: string;
  netnsPrefix: string;
  /** The tag prefix of images that are a build's own (intermediate stages); '' for none. */
  temporaryImagePrefix?: string;
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

export async function auditHost(target: AuditTarget): Promise<HostLeaks> {
  const { vmm, workDir } = target;
  const vms = await unaryCall<ListVmsResponse>('vmm', (cb) => vmm.listVms({ state: 0, buildId: '' }, cb));
  const images = await unaryCall<ListImagesResponse>('vmm', (cb) => vmm.listImages({ name: '', includeInternal: true }, cb));
  const temporary = target.temporaryImagePrefix ?? 'kindling-intermediate/';
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line.startsWith(target.netnsPrefix));
  const leaseDir = join(workDir, 'cni/ipam/kindling-local');
  const leases = (await entries(leaseDir)).filter((name) => /^\d+\.\d+\.\d+\.\d+$/.test(name));
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((line) => /\b(veth|tap)/.test(line) && !/\bkindling-br/.test(line.split(':')[1] ?? ''))
    .map((line) => line.split(':')[1]!.trim().split('@')[0]!);
  const processes = spawnSync('pgrep', ['-a', '-f', `(qemu-system|firecracker|jailer).*${workDir}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  const vmmDir = join(workDir, 'vmm');
  const files = [
    ...(await entries(join(vmmDir, 'vms'))).map((name) => `vms/${name}`),
    // half-written images and atomic-write temp files, anywhere in the services' state
    ...spawnSync('find', [workDir, '(', '-name', '.staging-*', '-o', '-name', '.retired-*', '-o', '-name', '.*.tmp-*', ')', '-prune', '-print'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map((path) => path.slice(workDir.length + 1)),
  ];
  return {
    vms: vms.vms.map((vm) => `${vm.id} ${vm.spec?.labels['kindling.build'] ?? ''}`),
    images: temporary === '' ? [] : images.images.filter((i) => i.name.startsWith(temporary)).map((i) => `${i.name}:${i.tag}`),
    netns,
    leases,
    links,
    processes,
    files,
  };
}

export const noLeaks = (): HostLeaks => ({ vms: [], images: [], netns: [], leases: [], links: [], processes: [], files: [] });

export function leakCount(leaks: HostLeaks): number {
  return Object.values(leaks).reduce((n, list: string[]) => n + list.length, 0);
}
