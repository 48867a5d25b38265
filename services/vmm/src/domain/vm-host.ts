import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from './errors.ts';
import { formatImageRef, type ImageRecord, type KernelRecord } from './image.ts';
import { kernelArgs } from './guest-contract.ts';
import { KeyedLock, runSteps } from './steps.ts';
import { canTransition, checkVmId, isActive, type VmRecord, type VmSpec, type VmState } from './vm.ts';
import { createVmSteps, launchSpecOf, vmRootfsPath } from './vm-create.ts';
import { prepareRestart } from './vm-restart.ts';
import { vmTransferPath, writeTransfer, type TransferWrite } from './vm-transfer.ts';
import { resolveCreateRequest, sameSpec } from './vm-create-request.ts';
import type { VmHostDeps } from './vm-host-deps.ts';

/**
 * The VM lifecycle core: CreateVm, StartVm, StopVm, DeleteVm and the queries, over the ports in
 * VmHostDeps. One VM's operations are serialized; each state change is persisted, then published.
 */
export class VmHost {
  private readonly lock = new KeyedLock();
  /** Aborts the exit watcher of each VM whose hypervisor runs. */
  private readonly exitWatchers = new Map<string, AbortController>();

  constructor(readonly deps: VmHostDeps) {}

  /**
   * Validates everything before creating anything (bad input leaves nothing behind), then runs the
   * create steps. Repeating a CreateVm with the same id and spec returns the existing VM.
   */
  async createVm(
    request: VmSpec,
    options: { start?: boolean; signal?: AbortSignal } = {},
  ): Promise<VmRecord> {
    const { records } = this.deps;
    const signal = options.signal;
    const { id, spec, image, kernel } = await resolveCreateRequest(this.deps, request);
    let createdHere = false;
    const created = await this.lock.run(id, async () => {
      const existing = await records.get(id);
      if (existing) {
        if (sameSpec(existing.spec, { ...spec, vmId: id })) return existing;
        throw new AlreadyExistsError(
          `VM ${id} already exists on host ${this.deps.host} with a different spec`,
        );
      }
      createdHere = true;
      return this.create(id, spec, image, kernel, signal);
    });
    try {
      if (!options.start) {
        // the caller may have given up after the last create step: it must not be left a VM it never saw
        signal?.throwIfAborted();
        return created;
      }
      return await this.startVm(id, signal);
    } catch (error) {
      // A caller that gave up never learns the VM's id: the VM this call created goes with it.
      if (createdHere && signal?.aborted) {
        await this.deleteVm(id).catch((cleanupError: unknown) =>
          this.deps.log.error({ vmId: id, err: cleanupError }, 'removing a cancelled CreateVm failed'),
        );
      }
      throw error;
    }
  }

  private async create(
    id: string,
    spec: VmSpec,
    image: ImageRecord,
    kernel: KernelRecord,
    signal: AbortSignal | undefined,
  ): Promise<VmRecord> {
    const { images, records } = this.deps;
    const ref = { name: image.name, tag: image.tag };
    const dir = records.vmDir(id);
    const now = new Date().toISOString();
    const hostname = spec.hostname || `kindling-${id.replace(/^vm-/, '').slice(0, 12)}`;
    const record: VmRecord & { creating?: boolean } = {
      id,
      host: this.deps.host,
      spec: { ...spec, vmId: id, hostname },
      state: 'CREATED',
      reason: '',
      createdAt: now,
      updatedAt: now,
      imageRef: formatImageRef(ref),
      imageDigest: image.digest,
      imageMetadata: image.metadata,
      kernelId: kernel.id,
      driver: this.deps.hypervisor.name,
      diskSizeBytes: Math.max(spec.diskSizeBytes, image.sizeBytes),
      rootfsPath: vmRootfsPath(dir),
      runDir: dir,
      consoleLogPath: join(dir, 'console.log'),
      ...((spec.transferDiskBytes ?? 0) > 0 ? { transferDiskPath: vmTransferPath(dir) } : {}),
      hostKeyPublic: '',
      stopRequested: false,
      kernelArgs: kernelArgs(hostname, undefined, spec.extraKernelArgs),
      creating: true,
    };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const save = () => records.save(record);
    try {
      await save();
      const steps = createVmSteps(this.deps, record, image, images.rootfsPath(ref), kernel, save, signal);
      const report = await runSteps(steps, signal);
      delete record.creating;
      await save();
      this.deps.log.info({ vmId: id, steps: report }, 'VM created');
    } catch (error) {
      await this.removeEverything(record).catch((cleanupError: unknown) =>
        this.deps.log.error({ vmId: id, err: cleanupError }, 'cleanup after a failed CreateVm failed'),
      );
      throw error;
    }
    await this.deps.events.emit(record, undefined);
    return record;
  }

  async startVm(id: string, signal?: AbortSignal): Promise<VmRecord> {
    return this.lock.run(id, async () => {
      const record = await this.mustGet(id);
      if (record.process && (await this.deps.hypervisor.isAlive(record.process))) return record;
      if (!canTransition(record.state, 'STARTING')) {
        throw new FailedPreconditionError(
          `VM ${id} is ${record.state}; only CREATED, STOPPED or FAILED VMs can be started`,
        );
      }
      const kernel = await this.deps.kernels.get(record.kernelId);
      if (!kernel)
        throw new FailedPreconditionError(
          `kernel ${record.kernelId} of VM ${id} is gone from the kernel store`,
        );
      await prepareRestart(this.deps, record, signal);
      record.stopRequested = false;
      await this.transition(record, 'STARTING', '');
      const spec = launchSpecOf(record, kernel);
      try {
        record.process = await this.deps.hypervisor.launch(spec, signal);
      } catch (error) {
        // A launch cut short (cancelled, or failing after qemu daemonized) can leave a hypervisor the
        // record does not know of, holding the disk: the driver finds it by its pid file and stops it.
        await this.deps.hypervisor.cleanup(undefined, { vmId: record.id, runDir: record.runDir });
        await this.transition(record, 'FAILED', (error as Error).message);
        if (signal?.aborted) throw signal.reason;
        throw new InternalError(`VM ${id} did not start: ${(error as Error).message}`, { cause: error });
      }
      record.startedAt = new Date().toISOString();
      delete record.stoppedAt;
      await this.transition(record, 'RUNNING', '');
      this.watchExit(record);
      return record;
    });
  }

  /** Graceful power-off, killed after timeoutMs (or at once with force). Stopping a VM that does not run is a no-op. */
  async stopVm(
    id: string,
    options: { timeoutMs?: number; force?: boolean } = {},
  ): Promise<{ record: VmRecord; graceful: boolean }> {
    const timeoutMs = options.timeoutMs || this.deps.stopTimeoutMs;
    return this.lock.run(id, async () => {
      const record = await this.mustGet(id);
      // Nothing to stop: the disk is consistent if the VM never ran or powered off by itself.
      if (!isActive(record.state) || !record.process)
        return {
          record,
          graceful: record.state === 'CREATED' || (record.state === 'STOPPED' && !record.reason),
        };
      record.stopRequested = true;
      await this.transition(record, 'STOPPING', '');
      const outcome = await this.deps.hypervisor.stop(record.process, options.force ? 0 : timeoutMs);
      this.exitWatchers.get(id)?.abort();
      await this.deps.hypervisor.cleanup(record.process, { vmId: record.id, runDir: record.runDir });
      delete record.process;
      record.stoppedAt = new Date().toISOString();
      const reason = outcome.graceful
        ? ''
        : options.force
          ? 'killed at once (force): its disk may need e2fsck before a commit'
          : `the guest did not power off within ${timeoutMs} ms and was killed; its disk may need e2fsck before a commit`;
      await this.transition(record, 'STOPPED', reason);
      return { record, graceful: outcome.graceful };
    });
  }

  async deleteVm(id: string): Promise<void> {
    await this.lock.run(id, async () => {
      const record = await this.mustGet(id);
      const previous = record.state;
      await this.removeEverything(record);
      record.state = 'DELETED';
      record.reason = '';
      await this.deps.events.emit(record, previous);
    });
  }

  /**
   * Fills a region of the VM's transfer disk. Not under the VM's lock: a write does not change the
   * VM's state, and a build's StopVm must not wait behind one.
   */
  async writeTransfer(
    id: string,
    write: TransferWrite & { readonly fromFetcherCache: boolean },
    chunks: AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<number> {
    const record = await this.mustGet(id);
    if (!write.fromFetcherCache) return writeTransfer(record, write, chunks, signal);
    for await (const chunk of chunks) {
      if (chunk.byteLength > 0) throw new InvalidArgumentError('with header.from_fetcher_cache no bytes may follow the header');
    }
    const blob = this.deps.fetcherBlob ? await this.deps.fetcherBlob(write.digest) : undefined;
    if (!blob) {
      throw new FailedPreconditionError(
        this.deps.fetcherBlob
          ? `blob ${write.digest} is not in the fetcher cache on host ${this.deps.host}: send its bytes`
          : `host ${this.deps.host} reads no fetcher cache (--fetcher-cache-dir): send the bytes`,
      );
    }
    return writeTransfer(record, write, blob, signal);
  }

  /** Runs work with the VM's lock held (e.g. a commit, so the VM cannot start under it). */
  withVmLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    return this.lock.run(id, work);
  }

  async mustGet(id: string): Promise<VmRecord> {
    const record = await this.deps.records.get(checkVmId(id));
    if (!record) throw new NotFoundError(`VM ${id} does not exist on host ${this.deps.host}`);
    return record;
  }

  /** Persists, then publishes: a subscriber never hears of a state the record does not hold. */
  async transition(record: VmRecord, state: VmState, reason: string): Promise<void> {
    const previous = record.state;
    if (previous === state && record.reason === reason) return;
    record.state = state;
    record.reason = reason;
    record.updatedAt = new Date().toISOString();
    await this.deps.records.save(record);
    await this.deps.events.emit(record, previous);
    this.deps.log.info({ vmId: record.id, state, previous, reason: reason || undefined }, 'VM state');
  }

  /** A hypervisor that exits without StopVm asking means the VM failed. */
  watchExit(record: VmRecord): void {
    const ref = record.process;
    if (!ref) return;
    this.exitWatchers.get(record.id)?.abort();
    const controller = new AbortController();
    this.exitWatchers.set(record.id, controller);
    this.deps.hypervisor
      .waitForExit(ref, controller.signal)
      .then(
        () =>
          this.lock.run(record.id, async () => {
            if (controller.signal.aborted) return;
            this.exitWatchers.delete(record.id);
            const current = await this.deps.records.get(record.id);
            if (!current || current.process?.pid !== ref.pid || !isActive(current.state)) return;
            await this.deps.hypervisor.cleanup(ref, { vmId: current.id, runDir: current.runDir });
            delete current.process;
            const asked = current.stopRequested || current.state === 'STOPPING';
            await this.transition(
              current,
              asked ? 'STOPPED' : 'FAILED',
              asked
                ? ''
                : `${ref.driver} (pid ${ref.pid}) exited without being asked to stop; see ${current.consoleLogPath}`,
            );
          }),
        () => undefined,
      )
      .catch((error: unknown) =>
        this.deps.log.error({ vmId: record.id, err: error }, 'handling a VM exit failed'),
      );
  }

  /** Stops watching every VM (vmm shutdown); the VMs themselves keep running and are re-adopted later. */
  detachAll(): void {
    for (const controller of this.exitWatchers.values()) controller.abort();
    this.exitWatchers.clear();
  }

  /** Everything a VM had on the host: process, sockets, network (CNI DEL, netns), disk, record. Idempotent. */
  async removeEverything(record: VmRecord): Promise<void> {
    this.exitWatchers.get(record.id)?.abort();
    this.exitWatchers.delete(record.id);
    await this.deps.hypervisor.cleanup(record.process, { vmId: record.id, runDir: record.runDir });
    if (record.spec.network && record.netnsName) {
      const netnsPath = record.network?.netnsPath ?? `/var/run/netns/${record.netnsName}`;
      const network = await this.deps.networks(record.spec.network).catch((error: unknown) => {
        // The conflist is gone: CNI DEL is impossible, but the namespace (and with it veth and tap) still goes.
        this.deps.log.warn(
          { vmId: record.id, err: error },
          'CNI DEL skipped: network no longer configured; its IP lease may remain',
        );
        return undefined;
      });
      await network?.detach(record.id, netnsPath).catch((error: unknown) => {
        // With an attachment, a failed DEL may hold an IP lease: DeleteVm fails so it can be retried.
        // Without one (an ADD that never finished), DEL was best effort: the namespace and record still go.
        if (record.network) throw error;
        this.deps.log.warn({ vmId: record.id, err: error }, 'CNI DEL after a failed ADD failed');
      });
      await this.deps.netns.remove(record.netnsName);
    }
    await this.deps.records.remove(record.id);
  }
}
