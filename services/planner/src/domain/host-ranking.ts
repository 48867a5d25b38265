/**
 * The placement rule: a build goes to the usable VM host with the most free memory, ties broken by
 * the most free vCPUs, then by the order the hosts were configured in. Free is what the host offers
 * (GetHostInfo's cpus and memory_bytes) less what its VMs that are not stopped claim.
 */

const MiB = 1024 ** 2;

export interface HostCapacity {
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly vcpusAllocated: number;
  readonly memoryAllocatedMib: number;
}

export interface FreeCapacity {
  readonly vcpus: number;
  readonly memoryBytes: number;
}

/** May be negative: a host whose VMs claim more than it offers. */
export function freeCapacity(host: HostCapacity): FreeCapacity {
  return { vcpus: host.cpus - host.vcpusAllocated, memoryBytes: host.memoryBytes - host.memoryAllocatedMib * MiB };
}

/** The hosts best first; equal ones keep their given order (the sort is stable). */
export function rankByFreeCapacity<T extends { readonly capacity: HostCapacity }>(hosts: readonly T[]): T[] {
  const free = new Map(hosts.map((host) => [host, freeCapacity(host.capacity)]));
  return [...hosts].sort((a, b) => {
    const fa = free.get(a)!;
    const fb = free.get(b)!;
    return fb.memoryBytes - fa.memoryBytes || fb.vcpus - fa.vcpus;
  });
}

/** "name" means "name:latest", as FROM reads it. */
export function withTag(reference: string): string {
  return /:[^/]*$/.test(reference) ? reference : `${reference}:latest`;
}

/** The required references that none of the images answers to (by name:tag or an alias). */
export function missingImages(required: readonly string[], images: readonly { name: string; tag: string; aliases: readonly string[] }[]): string[] {
  const present = new Set(images.flatMap((image) => [`${image.name}:${image.tag}`, ...image.aliases.map(withTag)]));
  return [...new Set(required.map(withTag))].filter((reference) => !present.has(reference));
}
