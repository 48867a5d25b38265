import { randomBytes } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from './errors.ts';
import {
  checkKernelId,
  formatImageRef,
  parseImageRef,
  type ImageRecord,
  type KernelRecord,
} from './image.ts';
import { GUEST_INIT, GUEST_JSON } from './guest-contract.ts';
import { checkVmId, type VmSpec } from './vm.ts';
import type { VmHostDeps } from './vm-host-deps.ts';
import { checkVmSpec } from './vm-spec-checks.ts';
import { checkTransferDiskBytes } from './vm-transfer.ts';

export interface CreateRequest {
  readonly id: string;
  /** The spec with its defaults filled in (vCPUs, memory, network, kernel). */
  readonly spec: VmSpec;
  readonly image: ImageRecord;
  readonly kernel: KernelRecord;
}

/** CreateVm's checks, all made before anything is created, so bad input leaves nothing behind. */
export async function resolveCreateRequest(deps: VmHostDeps, request: VmSpec): Promise<CreateRequest> {
  const { images, kernels } = deps;
  const ref = parseImageRef(request.image);
  const image = await images.get(ref);
  if (!image) {
    const known = (await images.list()).map((i) => `${i.name}:${i.tag}`).join(', ') || 'none';
    throw new NotFoundError(
      `image ${formatImageRef(ref)} does not exist on host ${deps.host} (available: ${known}): import it with ImportImage or build a base OS`,
    );
  }
  // Without it the kernel panics at boot, or boots a shell that never applies guest.json (FROM scratch images)
  if ((await deps.disk.absentPaths(images.rootfsPath(ref), [GUEST_INIT])).size > 0) {
    throw new FailedPreconditionError(
      `image ${formatImageRef(ref)} has no ${GUEST_INIT} (the init that boots the guest and applies ${GUEST_JSON}): it cannot boot as a VM; a FROM scratch image is files to COPY --from, or build it FROM a base OS`,
    );
  }
  const kernelId = request.kernelId || image.defaultKernelId || '';
  if (!kernelId) {
    throw new InvalidArgumentError(
      `image ${formatImageRef(ref)} names no default kernel: pass kernel_id (see ListKernels)`,
    );
  }
  // The id names a directory of the kernel store: a path must not reach another one.
  const kernel = await kernels.get(checkKernelId(kernelId));
  if (!kernel) {
    throw new NotFoundError(`kernel ${kernelId} does not exist on host ${deps.host}: see ListKernels`);
  }
  // Refused now rather than at StartVm, after the disk was copied and the network attached.
  if (deps.hypervisor.name === 'firecracker' && !kernel.vmlinuxPath) {
    throw new FailedPreconditionError(
      `kernel ${kernel.id} has no uncompressed vmlinux, the only form Firecracker boots: pass a kernel_id with one (see ListKernels: has_vmlinux)`,
    );
  }
  if (request.diskSizeBytes !== 0 && request.diskSizeBytes < image.sizeBytes) {
    throw new InvalidArgumentError(
      `disk size ${request.diskSizeBytes} bytes is smaller than image ${formatImageRef(ref)} (${image.sizeBytes} bytes): ask for at least the image size, or 0 to keep it`,
    );
  }
  const spec: VmSpec = {
    ...request,
    vcpus: request.vcpus || 2,
    memoryMib: request.memoryMib || 1024,
    network: request.network || deps.defaultNetwork,
    kernelId,
    transferDiskBytes: checkTransferDiskBytes(request.transferDiskBytes ?? 0),
  };
  checkVmSpec(spec);
  // Only a new VM needs every plugin: lookups for GetVm or a DEL must not fail on one the DEL never runs.
  if (spec.network) await (await deps.networks(spec.network)).verify();
  const id = checkVmId(request.vmId || `vm-${randomBytes(5).toString('hex')}`);
  return { id, spec, image, kernel };
}

/**
 * Whether a repeated CreateVm asks for the same VM (idempotent retry) or a different one. The existing
 * VM's hostname was filled in when the request left it empty, so only a hostname asked for is compared.
 */
export function sameSpec(a: VmSpec, b: VmSpec): boolean {
  if (b.hostname !== '' && b.hostname !== a.hostname) return false;
  const key = (s: VmSpec) =>
    JSON.stringify([
      s.image,
      s.kernelId,
      s.vcpus,
      s.memoryMib,
      s.diskSizeBytes,
      s.network,
      [...s.authorizedKeys].sort(),
      s.extraKernelArgs,
      s.buildId,
      s.transferDiskBytes ?? 0,
      Object.entries(s.labels).sort(([x], [y]) => x.localeCompare(y)),
    ]);
  return key(a) === key(b);
}
