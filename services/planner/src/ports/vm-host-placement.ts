/**
 * Where a build runs when the planner has several VM hosts: place() picks one host per build (all its
 * stages, step-cache lookups and images go there); the rest of the build sees only that BuildVmHost.
 */
import type { Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { BuildVmHost } from './build-services.ts';

export interface BuildRequirements {
  /** Images the build reads from the host's store (FROM and --from images that are not stages), "name[:tag]". */
  readonly images: readonly string[];
}

export interface VmHostPlacement {
  /** The images of every reachable host (the first host listing a name:tag wins), for planning before placement. */
  listImages(signal: AbortSignal, options?: { includeInternal?: boolean }): Promise<Image[]>;
  /** The host the build runs on; throws a DomainError naming every host and why none could take it. */
  place(requirements: BuildRequirements, signal: AbortSignal): Promise<BuildVmHost>;
  /** The hosts that answer now (for the step cache's listing and pruning). */
  reachableHosts(signal: AbortSignal): Promise<BuildVmHost[]>;
}

export function isPlacement(value: BuildVmHost | VmHostPlacement): value is VmHostPlacement {
  return 'place' in value;
}

/** One host: every build goes there, whatever it needs (a missing image fails the build as before). */
export function singleHostPlacement(host: BuildVmHost): VmHostPlacement {
  return {
    listImages: (signal, options) => host.listImages(signal, options),
    place: async () => host,
    reachableHosts: async () => [host],
  };
}
