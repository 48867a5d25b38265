import { stat } from 'node:fs/promises';
import type { CreateImageFromArchiveRequest, VmmServiceServer, WriteVmTransferRequest } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { InvalidArgumentError, clientStream, serverStream, unary } from '@kindling/runtime';
import type { ImageCatalog } from '../../domain/image-catalog.ts';
import type { ImageRecord } from '../../domain/image.ts';
import type { VmHost } from '../../domain/vm-host.ts';
import type { VmQueries } from '../../domain/vm-queries.ts';
import { checkVmId } from '../../domain/vm.ts';
import { TRANSFER_DEVICE } from '../../domain/vm-transfer.ts';
import {
  fromProtoMetadata,
  fromProtoSpec,
  fromProtoState,
  toProtoEvent,
  toProtoImage,
  toProtoKernel,
  toProtoVm,
} from './convert.ts';

/** Facts about the machine that GetHostInfo reports beside what the VMs claim. */
export interface HostFacts {
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly version: string;
  diskFreeBytes(): Promise<number>;
  hypervisorVersion(): Promise<string>;
  accel(): Promise<string>;
}

const required = (value: string, field: string): string => {
  if (!value.trim()) throw new InvalidArgumentError(`${field} is required`);
  return value.trim();
};

async function withAllocation(image: ImageRecord, rootfsPath: string) {
  const blocks = await stat(rootfsPath).then(
    (s) => s.blocks * 512,
    () => 0,
  );
  return toProtoImage(image, blocks);
}

/** The VmmService gRPC adapter: validates, converts, calls the core. */
export function vmmGrpcImplementation(
  host: VmHost,
  queries: VmQueries,
  catalog: ImageCatalog,
  facts: HostFacts,
): VmmServiceServer {
  const images = host.deps.images;
  const rootfs = (image: ImageRecord) => images.rootfsPath({ name: image.name, tag: image.tag });
  return {
    listImages: unary(async (request) => {
      // An operator's "debian:12" here would match no repository and look like an empty store.
      if (request.name.includes(':'))
        throw new InvalidArgumentError(
          `name "${request.name}" has a tag: ListImages filters by repository name (e.g. debian); GetImage takes name:tag`,
        );
      const selected = await catalog.listImages({ name: request.name, includeInternal: request.includeInternal });
      return { images: await Promise.all(selected.map((i) => withAllocation(i, rootfs(i)))) };
    }),
    getImage: unary(async (request) => {
      const image = await catalog.getImage(required(request.image, 'image'));
      return { image: await withAllocation(image, rootfs(image)) };
    }),
    deleteImage: unary(async (request) => {
      await catalog.deleteImage(required(request.image, 'image'));
      return {};
    }),
    importImage: unary(async (request, ctx) => {
      const image = await catalog.importImage(
        required(request.rootfsPath, 'rootfs_path'),
        required(request.image, 'image'),
        fromProtoMetadata(request.metadata),
        { ...(request.kernelId ? { kernelId: request.kernelId } : {}), overwrite: request.overwrite },
        ctx.signal,
      );
      return { image: await withAllocation(image, rootfs(image)) };
    }),
    listKernels: unary(async () => ({ kernels: (await catalog.listKernels()).map(toProtoKernel) })),

    createVm: unary(async (request, ctx) => {
      const spec = fromProtoSpec(request.spec, request.vmId);
      required(spec.image, 'spec.image');
      const vm = await host.createVm(spec, { start: request.start, signal: ctx.signal });
      return { vm: toProtoVm(vm) };
    }),
    startVm: unary(async (request, ctx) => ({
      vm: toProtoVm(await host.startVm(required(request.vmId, 'vm_id'), ctx.signal)),
    })),
    stopVm: unary(async (request) => {
      const timeoutMs = request.timeout
        ? Number(request.timeout.seconds) * 1000 + Math.round(request.timeout.nanos / 1e6)
        : undefined;
      if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0))
        throw new InvalidArgumentError(
          `timeout ${request.timeout!.seconds}s ${request.timeout!.nanos}ns is negative: pass a positive timeout, none for the host default, or force`,
        );
      const { record, graceful } = await host.stopVm(required(request.vmId, 'vm_id'), {
        ...(timeoutMs ? { timeoutMs } : {}),
        force: request.force,
      });
      return { vm: toProtoVm(record), graceful };
    }),
    deleteVm: unary(async (request) => {
      await host.deleteVm(required(request.vmId, 'vm_id'));
      return {};
    }),
    getVm: unary(async (request, ctx) => {
      const view = await queries.getVm(required(request.vmId, 'vm_id'), ctx.signal);
      const vm = toProtoVm(view);
      // A broken attachment is news about a VM, not a failed call: it is reported in the reason.
      if (view.networkProblem) {
        vm.stateReason = [vm.stateReason, `network check failed: ${view.networkProblem}`]
          .filter(Boolean)
          .join('; ');
      }
      return { vm };
    }),
    listVms: unary(async (request) => {
      const state = request.state ? fromProtoState(request.state) : undefined;
      // An unknown state must not silently mean "every VM".
      if (request.state && !state)
        throw new InvalidArgumentError(
          `state ${request.state} is not a VmState: use 0 for every VM, or 1..7`,
        );
      const vms = (await queries.listVms())
        .filter((vm) => (state ? vm.state === state : true))
        .filter((vm) => (request.buildId ? vm.spec.buildId === request.buildId : true))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      return { vms: vms.map(toProtoVm) };
    }),
    watchVms: serverStream(async (request, ctx, send) => {
      // A watch may start before its VM exists, but a vm_id no VM can have would stream nothing forever.
      if (request.vmId) checkVmId(request.vmId, 'vm_id');
      await queries.watchVms(ctx.signal, (event) => send({ event: toProtoEvent(event) }), request.vmId);
    }),
    commitVm: unary(async (request, ctx) => {
      const image = await catalog.commitVm(
        required(request.vmId, 'vm_id'),
        required(request.image, 'image'),
        fromProtoMetadata(request.metadata),
        { shrink: request.shrink, overwrite: request.overwrite, live: request.live },
        ctx.signal,
      );
      return { image: await withAllocation(image, rootfs(image)) };
    }),
    snapshotVm: serverStream(async (request, ctx, send) => {
      const image = await catalog.commitVm(
        required(request.vmId, 'vm_id'),
        required(request.image, 'image'),
        fromProtoMetadata(request.metadata),
        { overwrite: request.overwrite, live: true, onDiskTaken: () => send({ progress: { $case: 'diskTaken', value: {} } }) },
        ctx.signal,
      );
      await send({ progress: { $case: 'image', value: await withAllocation(image, rootfs(image)) } });
    }),
    exportImageFiles: serverStream(async (request, ctx, send) => {
      const archive = await catalog.exportFiles(required(request.image, 'image'), request.paths, request.allowMissing, ctx.signal);
      for await (const chunk of archive) await send({ chunk });
    }),
    createImageFromArchive: clientStream(async (requests: AsyncIterable<CreateImageFromArchiveRequest>, ctx) => {
      const { header, chunks } = await headerThenChunks(requests, 'the header (image, metadata), then the archive chunks');
      const image = await catalog.createFromArchive(
        required(header.image, 'header.image'),
        fromProtoMetadata(header.metadata),
        chunks,
        { kernelId: header.kernelId, overwrite: header.overwrite, extraBytes: Number(header.extraBytes) },
        ctx.signal,
      );
      return { image: await withAllocation(image, rootfs(image)) };
    }),
    writeVmTransfer: clientStream(async (requests: AsyncIterable<WriteVmTransferRequest>, ctx) => {
      const { header, chunks } = await headerThenChunks(requests, 'the header (vm_id, offset, size, digest), then the bytes');
      const vmId = checkVmId(required(header.vmId, 'header.vm_id'), 'header.vm_id');
      const write = { offset: Number(header.offset), size: Number(header.size), digest: header.digest, fromFetcherCache: header.fromFetcherCache };
      const bytesWritten = await host.writeTransfer(vmId, write, chunks, ctx.signal);
      return { bytesWritten: String(bytesWritten), device: TRANSFER_DEVICE };
    }),
    tagImage: unary(async (request) => {
      const image = await catalog.tagImage(
        required(request.source, 'source'),
        required(request.image, 'image'),
        request.metadata ? fromProtoMetadata(request.metadata) : undefined,
        request.overwrite,
      );
      return { image: await withAllocation(image, rootfs(image)) };
    }),
    getHostInfo: unary(async () => {
      const vms = await queries.listVms();
      const claiming = vms.filter((vm) => ['STARTING', 'RUNNING', 'STOPPING'].includes(vm.state));
      const [diskFree, hypervisorVersion, accel] = await Promise.all([
        facts.diskFreeBytes(),
        facts.hypervisorVersion(),
        facts.accel(),
      ]);
      return {
        host: host.deps.host,
        cpus: facts.cpus,
        memoryBytes: String(facts.memoryBytes),
        runningVms: vms.filter((vm) => vm.state === 'RUNNING').length,
        vcpusAllocated: claiming.reduce((sum, vm) => sum + vm.spec.vcpus, 0),
        memoryAllocatedMib: String(claiming.reduce((sum, vm) => sum + vm.spec.memoryMib, 0)),
        driver: host.deps.hypervisor.name,
        version: facts.version,
        accel,
        diskFreeBytes: String(diskFree),
        hypervisorVersion,
      };
    }),
  };
}

/** A client stream whose first message is the header (part "header") and the rest bytes (part "chunk"). */
async function headerThenChunks<H>(
  requests: AsyncIterable<{ part?: { $case: 'header'; value: H } | { $case: 'chunk'; value: Uint8Array } | undefined }>,
  expected: string,
): Promise<{ header: H; chunks: AsyncIterable<Uint8Array> }> {
  const iterator = requests[Symbol.asyncIterator]();
  const first = await iterator.next();
  const header = first.done ? undefined : first.value.part?.$case === 'header' ? first.value.part.value : undefined;
  if (header === undefined) throw new InvalidArgumentError(`the first message must be ${expected}`);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      const part = next.value.part;
      if (part?.$case !== 'chunk') throw new InvalidArgumentError(`only chunks may follow the header: send ${expected}`);
      yield part.value;
    }
  }
  return { header, chunks: chunks() };
}
