/**
 * Builds one stage: works out each step's effective cache key, takes the longest cached prefix, and
 * boots a VM only when a step must run, from the snapshot after the last cached step (or the base).
 * After each step that changed the filesystem it stores a snapshot (guest frozen with fsfreeze, the
 * disk copied live); the stage's last such step reuses the committed stage image instead of a copy.
 */
import type { Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { LogStream, StepState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { ImageMetadata as ProtoImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type { SshTarget } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { DomainError, FailedPreconditionError, generateSshKeyPair } from '@kindling/runtime';
import type { PlannedStage, PlannedStep } from '../domain/plan.ts';
import { errorInfo } from './build-events.ts';
import type { BuildShared } from './build-shared.ts';
import { runtimeInputs, stagesRead } from './cache-inputs.ts';
import { toProtoImageMetadata } from './image-metadata.ts';
import { CACHE_INSTRUCTION_LABEL, CACHE_KEY_LABEL, cacheImageFor, chainKey } from './step-cache.ts';
import { ScratchAssembly } from './scratch-stage.ts';
import type { AwaitStage } from './stage-scheduler.ts';
import type { GuestTransferDisk } from './transfer-staging.ts';

/** A stage's running build VM: how to reach it, and its transfer disk when it has one. */
interface BootedVm {
  readonly id: string;
  readonly target: SshTarget;
  readonly transferDisk?: GuestTransferDisk;
}
import { executeStep, StepCommandFailed } from './step-executor.ts';

const OUTPUT_TAIL_BYTES = 4096;
// A watchdog thaws the guest should the host never come back to do it (planner gone, call cut).
// Both scripts run in the session's long-lived shell (reuse_shell), so the watchdog, a background
// subshell, is nobody's process group leftover. fsfreeze flushes the filesystem itself, so no sync
// before it. Under TCG every process start costs tens of milliseconds: the thaw uses builtins to stop
// the watchdog, and empties its pid file so a later thaw cannot kill a recycled pid.
const FREEZE_SCRIPT =
  '( sleep 120; fsfreeze --unfreeze / ) </dev/null >/dev/null 2>&1 & echo $! > /run/kindling-thaw.pid; fsfreeze --freeze /';
const THAW_SCRIPT =
  'fsfreeze --unfreeze /; read -r watchdog < /run/kindling-thaw.pid 2>/dev/null && kill "$watchdog" 2>/dev/null; : > /run/kindling-thaw.pid; true';

/** Steps that change the filesystem (the others only change metadata and the keys after them). */
function changesFilesystem(step: PlannedStep): boolean {
  return step.action.kind === 'run' || step.action.kind === 'copy' || step.action.kind === 'workdir';
}

export interface StageOutcome {
  /** Effective key of the stage's last step (or its base's). */
  key: string;
  booted: boolean;
}

export class StageBuild {
  private outputTail = Buffer.alloc(0);
  /** Snapshots whose disk is taken and which the vmm is still storing; each settles, never rejects. */
  private readonly storingSnapshots: Promise<void>[] = [];

  constructor(
    private readonly shared: BuildShared,
    private readonly stage: PlannedStage,
    /** The image the stage is committed as. */
    private readonly tag: string,
    private readonly isTarget: boolean,
    private readonly onStep: (step: number, line: number) => void,
  ) {}

  get lastOutput(): string {
    return this.outputTail.toString('utf8');
  }

  async build(signal: AbortSignal, awaitStage: AwaitStage = async () => {}): Promise<StageOutcome> {
    const { stage, shared } = this;
    shared.boots.expect(stage.index, this.urgency());
    try {
      return await this.buildStage(signal, awaitStage);
    } finally {
      shared.boots.withdraw(stage.index);
    }
  }

  /** How many steps the stage can run before it reads another stage: its claim to boot first. */
  private urgency(): number {
    const { stageOf } = this.shared.cacheInputs();
    const first = this.stage.steps.findIndex((step) => stagesRead(step, stageOf).length > 0);
    return first < 0 ? this.stage.steps.length : first;
  }

  private async buildStage(signal: AbortSignal, awaitStage: AwaitStage): Promise<StageOutcome> {
    const { stage, shared } = this;
    const base = shared.baseOf(stage);
    const keys = new StepKeys(shared, stage, chainKey('', 'base', [base.identity]), awaitStage, this.onStep);
    const changing = stage.steps.filter(changesFilesystem).map((s) => s.index);
    const lastChanging = changing.at(-1) ?? -1;
    // The keys known without waiting for another stage decide whether to boot now: when a step in
    // them must run, the VM boots while the stages this one copies from are still building.
    const known = await keys.withoutWaiting(signal);
    let { resumeAfter, bootImage } = await this.cachedPrefix(keys, changing.filter((i) => i < known), base.image, signal);
    const prefixAllCached = resumeAfter === (changing.filter((i) => i < known).at(-1) ?? -1);
    if (known < stage.steps.length && prefixAllCached && !shared.request.noCache) {
      shared.boots.withdraw(stage.index); // it waits for other stages: no boot slot may wait for it
      await keys.through(stage.steps.length - 1, signal);
      ({ resumeAfter, bootImage } = await this.cachedPrefix(keys, changing, base.image, signal));
    }
    if (resumeAfter >= 0) await shared.cache.touch(keys.at(resumeAfter));
    if (stage.base.kind === 'scratch' || resumeAfter === lastChanging) shared.boots.withdraw(stage.index);
    if (stage.base.kind === 'scratch' && (resumeAfter !== lastChanging || resumeAfter < 0)) {
      await keys.through(stage.steps.length - 1, signal);
      await this.assembleScratch(signal, keys.all());
      await this.storeInCache(keys.all(), lastChanging);
      return { key: keys.last(), booted: false };
    }
    if (resumeAfter === lastChanging) {
      // Nothing to run: the stage is its base (or the cached snapshot) with the stage's metadata.
      await keys.through(stage.steps.length - 1, signal);
      for (const step of stage.steps) this.reportCached(step, keys.at(step.index));
      await shared.services.vmHost.tagImage({ source: bootImage, image: this.tag, metadata: this.metadata(), overwrite: true });
      shared.events.system(stage.index, -1, resumeAfter >= 0 ? `stage ${stage.index}: every step cached, no VM booted` : `stage ${stage.index}: nothing to run, no VM booted`);
      return { key: keys.last(), booted: false };
    }
    const vm = await this.boot(bootImage, base.diskBytes, signal);
    try {
      for (const step of stage.steps) {
        await keys.through(step.index, signal);
        if (step.index <= resumeAfter) {
          this.reportCached(step, keys.at(step.index));
          continue;
        }
        this.onStep(step.index, step.line);
        await this.runStep(step, vm, keys.at(step.index), signal);
        if (changesFilesystem(step) && step.index !== lastChanging) await this.snapshot(vm.id, vm.target, step, keys.at(step.index), signal);
      }
    } finally {
      // every snapshot stored (or failed) before the VM is committed or deleted: none outlives its build
      await Promise.all(this.storingSnapshots);
    }
    await this.commit(vm.id, vm.target, stage.steps.at(-1)?.index ?? 0);
    await this.storeInCache(keys.all(), lastChanging);
    return { key: keys.last(), booted: true };
  }

  /** The last of `changing` (filesystem steps with known keys) whose snapshot is cached, and its image. */
  private async cachedPrefix(keys: StepKeys, changing: number[], baseImage: string, signal: AbortSignal): Promise<{ resumeAfter: number; bootImage: string }> {
    if (this.shared.request.noCache) return { resumeAfter: -1, bootImage: baseImage };
    const present = await this.shared.cache.present(signal);
    const hit = [...changing].reverse().find((index) => present.has(keys.at(index)));
    return hit === undefined ? { resumeAfter: -1, bootImage: baseImage } : { resumeAfter: hit, bootImage: cacheImageFor(keys.at(hit)) };
  }

  /** The committed stage image is also the cache entry of its last filesystem step: a tag, no copy. */
  private async storeInCache(keys: string[], lastChanging: number): Promise<void> {
    if (lastChanging < 0) return;
    const { shared } = this;
    const key = keys[lastChanging]!;
    await shared.services.vmHost
      .tagImage({ source: this.tag, image: cacheImageFor(key), metadata: cacheMetadata(key, this.stage.steps[lastChanging]!), overwrite: true })
      .then(() => shared.cache.touch(key))
      .catch((error: unknown) => shared.log.warn({ err: error }, 'could not store the stage result in the step cache'));
  }

  /** FROM scratch: the steps place files in a tree on the planner, and the vmm makes the image from it. */
  private async assembleScratch(signal: AbortSignal, keys: string[]): Promise<void> {
    const { shared } = this;
    const assembly = new ScratchAssembly({
      context: shared.services.context,
      vmHost: shared.services.vmHost,
      contextId: shared.contextId,
      stageImages: shared.stageImages,
      imageNamed: (reference) => shared.imageNamed(reference),
    });
    for (const step of this.stage.steps) {
      this.onStep(step.index, step.line);
      await this.reportStep(step, keys[step.index]!, () => assembly.apply(step, signal));
    }
    shared.setCommitting();
    await assembly.store(this.tag, this.metadata(), signal);
  }

  private metadata(): ProtoImageMetadata {
    const metadata = toProtoImageMetadata(this.stage.image);
    if (this.isTarget) metadata.labels = { ...metadata.labels, ...this.shared.request.labels };
    return metadata;
  }

  private reportCached(step: PlannedStep, key: string): void {
    this.shared.record.stepsDone += 1;
    this.shared.events.step({ stageIndex: this.stage.index, stepIndex: step.index, instruction: step.expanded || step.original, line: step.line, cacheKey: key, state: StepState.STEP_STATE_CACHED });
  }

  private async boot(image: string, diskBytes: number, signal: AbortSignal): Promise<BootedVm> {
    this.shared.setBooting();
    // made (disk copy, network, guest files) before the slot is taken: host work the other boot can
    // run beside; the slot is held from the start until the guest answers SSH, the CPU-bound part
    const created = await this.createVm(image, diskBytes, signal);
    return this.shared.boots.run(this.stage.index, this.urgency(), signal, () => this.startVm(created, signal));
  }

  private async createVm(image: string, diskBytes: number, signal: AbortSignal): Promise<{ vm: Vm; privateKey: string }> {
    const { shared, stage } = this;
    const request = shared.request;
    const keys = generateSshKeyPair();
    const vmId = `b-${shared.record.id.slice(0, 12)}-${stage.index}`;
    shared.events.system(stage.index, -1, `booting a VM from ${image}`);
    const vm = await shared.trackVm(vmId, () =>
      shared.services.vmHost.createVm(
        {
          vmId,
          start: false,
          spec: {
            image,
            kernelId: request.resources?.kernelId ?? '',
            vcpus: request.resources?.vcpus || 2,
            memoryMib: request.resources?.memoryMib || 1024,
            diskSizeBytes: request.resources?.diskSizeBytes && request.resources.diskSizeBytes !== '0' ? request.resources.diskSizeBytes : String(diskBytes),
            network: request.resources?.network ?? '',
            authorizedKeys: [keys.public],
            hostname: `build-${shared.record.id.slice(0, 8)}`,
            extraKernelArgs: '',
            labels: { 'kindling.build': shared.record.id },
            buildId: shared.record.id,
            transferDiskBytes: String(shared.settings.transferDiskBytes ?? 0),
          },
        },
        signal,
      ),
    );
    return { vm, privateKey: keys.private };
  }

  private async startVm(created: { vm: Vm; privateKey: string }, signal: AbortSignal): Promise<BootedVm> {
    const { shared } = this;
    const vm = await shared.services.vmHost.startVm(created.vm.id, signal);
    const target: SshTarget = {
      host: vm.network?.guestIp ?? '',
      port: 22,
      user: 'root',
      privateKey: created.privateKey,
      agentSocket: '',
      hostKey: vm.sshHostPublicKey,
      insecureIgnoreHostKey: false,
      sessionId: vm.id,
    };
    await shared.services.guest.waitReady(target, shared.settings.sshReadyTimeoutMs, signal);
    shared.setRunning();
    // a vmm that predates transfer disks reports no device: everything goes through SSH
    const transferDisk = vm.transferDiskDevice
      ? { vmId: vm.id, device: vm.transferDiskDevice, bytes: Number(vm.spec?.transferDiskBytes ?? 0) }
      : undefined;
    return { id: vm.id, target, ...(transferDisk ? { transferDisk } : {}) };
  }

  private async runStep(step: PlannedStep, vm: BootedVm, key: string, signal: AbortSignal): Promise<void> {
    const { shared, stage } = this;
    const { target, transferDisk } = vm;
    await this.reportStep(step, key, () =>
      executeStep(
        {
          buildId: shared.record.id,
          target,
          contextId: shared.contextId,
          secrets: shared.secrets,
          guest: shared.services.guest,
          context: shared.services.context,
          vmHost: shared.services.vmHost,
          stageImages: shared.stageImages,
          imageNamed: (reference) => shared.imageNamed(reference),
          ...(transferDisk ? { transferDisk } : {}),
          warn: (message, error) => shared.log.warn({ err: error, stageIndex: stage.index, stepIndex: step.index }, message),
          signal,
          onOutput: (stream: LogStream, data: Uint8Array) => {
            shared.events.log(stage.index, step.index, stream, data);
            this.outputTail = Buffer.concat([this.outputTail, data]).subarray(-OUTPUT_TAIL_BYTES);
          },
        },
        step,
      ),
    );
  }

  /** Runs a step between its STARTED and SUCCEEDED/FAILED events. */
  private async reportStep(step: PlannedStep, key: string, execute: () => Promise<unknown>): Promise<void> {
    const { shared, stage } = this;
    const started = performance.now();
    const stepEvent = { stageIndex: stage.index, stepIndex: step.index, instruction: step.expanded || step.original, line: step.line, cacheKey: key };
    shared.events.step({ ...stepEvent, state: StepState.STEP_STATE_STARTED });
    this.outputTail = Buffer.alloc(0);
    const ended = (succeeded: boolean): number => {
      const ms = performance.now() - started;
      shared.services.observer?.stepEnded(step.instruction, ms / 1000, succeeded);
      return ms;
    };
    try {
      await execute();
    } catch (error) {
      ended(false);
      const exitCode = error instanceof StepCommandFailed ? error.exit.exitCode : undefined;
      shared.events.step({
        ...stepEvent,
        state: StepState.STEP_STATE_FAILED,
        ...(exitCode === undefined ? {} : { exitCode }),
        error: errorInfo({ code: error instanceof DomainError ? error.code : 'ABORTED', message: (error as Error).message, stageIndex: stage.index, stepIndex: step.index, line: step.line }),
      });
      throw error;
    }
    const ms = ended(true);
    shared.record.stepsDone += 1;
    shared.events.step({ ...stepEvent, state: StepState.STEP_STATE_SUCCEEDED, duration: { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) } });
  }

  /**
   * Stores the filesystem after a step; a failed snapshot costs the cache, never the build. The guest
   * is thawed as soon as its disk is copied: the strip, digest and store overlap the next step.
   */
  private async snapshot(vmId: string, target: SshTarget, step: PlannedStep, key: string, signal: AbortSignal): Promise<void> {
    const { shared } = this;
    const exec = (script: string, s: AbortSignal) => this.guestExec(target, step.index, script, s);
    const frozen = await exec(FREEZE_SCRIPT, signal);
    try {
      if (frozen.exitCode !== 0) throw new FailedPreconditionError(`fsfreeze failed in the guest (exit ${frozen.exitCode ?? frozen.signal})`);
      // not cut short by a cancel: the stage waits for it (storingSnapshots) before its VM goes
      const { diskTaken, stored } = shared.services.vmHost.snapshotVm({ vmId, image: cacheImageFor(key), metadata: cacheMetadata(key, step), overwrite: true });
      this.storingSnapshots.push(
        stored
          .then(() => shared.cache.touch(key))
          .catch((error: unknown) => shared.log.warn({ err: error, step: step.index }, 'could not snapshot a step for the cache')),
      );
      await diskTaken.catch(() => {}); // a snapshot that fails before its disk is taken is logged just above
    } catch (error) {
      if (signal.aborted) throw error;
      shared.log.warn({ err: error, step: step.index }, 'could not snapshot a step for the cache');
    } finally {
      // thawed even when the build was cancelled: the VM is deleted next, but never leave it frozen
      await exec(THAW_SCRIPT, new AbortController().signal).catch((error: unknown) => shared.log.warn({ err: error }, 'could not thaw the guest filesystem'));
    }
  }

  private guestExec(target: SshTarget, stepIndex: number, script: string, signal: AbortSignal) {
    const { shared } = this;
    return shared.services.guest.exec({ target, command: { $case: 'argv', value: { argv: ['/bin/sh', '-c', script] } }, env: [], user: '', workingDir: '/', buildId: shared.record.id, stepIndex, reuseShell: true }, () => {}, signal);
  }

  /**
   * Stops the VM and commits its disk. fsfreeze leaves the filesystem clean on the disk (data and
   * journal flushed, as for a snapshot), so a frozen guest is killed rather than powered off: the same
   * image without the guest's shutdown. A guest that cannot freeze is powered off as before.
   */
  private async commit(vmId: string, target: SshTarget, stepIndex: number): Promise<void> {
    const { shared } = this;
    shared.setCommitting();
    const frozen = await this.guestExec(target, stepIndex, FREEZE_SCRIPT, new AbortController().signal).then(
      (result) => result.exitCode === 0,
      () => false,
    );
    await shared.services.guest.closeSession(vmId).catch(() => {});
    await shared.services.vmHost.stopVm(vmId, shared.settings.stopTimeoutMs, { force: frozen });
    await shared.services.vmHost.commitVm({ vmId, image: this.tag, metadata: this.metadata(), shrink: false, overwrite: true, live: false });
    await shared.releaseVm(vmId);
  }
}

/**
 * Each step's effective key, chained from the base's: computed in order, and a step that reads
 * another stage waits for that stage first (its key includes the stage's).
 */
class StepKeys {
  private readonly keys: string[] = [];
  private parent: string;

  constructor(
    private readonly shared: BuildShared,
    private readonly stage: PlannedStage,
    baseKey: string,
    private readonly awaitStage: AwaitStage,
    /** Names the step whose inputs could not be read (a URL answering 404) as the failing one. */
    private readonly onStep: (step: number, line: number) => void,
  ) {
    this.parent = baseKey;
  }

  /** Computes keys up to the first step that reads a stage not yet built; resolves how many are known. */
  async withoutWaiting(signal: AbortSignal): Promise<number> {
    const built = this.shared.stageImages;
    for (const step of this.stage.steps.slice(this.keys.length)) {
      if (this.reads(step).some((index) => !built.has(index))) break;
      await this.next(step, signal);
    }
    return this.keys.length;
  }

  /** Computes keys through step `last`, waiting for the stages they read. */
  async through(last: number, signal: AbortSignal): Promise<void> {
    for (const step of this.stage.steps.slice(this.keys.length, last + 1)) {
      for (const index of this.reads(step)) await this.awaitStage(index);
      await this.next(step, signal);
    }
  }

  at(index: number): string {
    const key = this.keys[index];
    if (key === undefined) throw new Error(`step ${index}'s cache key is not computed yet`);
    return key;
  }

  all(): string[] {
    return [...this.keys];
  }

  last(): string {
    return this.keys.at(-1) ?? this.parent;
  }

  private reads(step: PlannedStep): number[] {
    return stagesRead(step, this.shared.cacheInputs().stageOf);
  }

  private async next(step: PlannedStep, signal: AbortSignal): Promise<void> {
    const inputs = await runtimeInputs(step, this.shared.cacheInputs(), signal).catch((error: unknown) => {
      this.onStep(step.index, step.line);
      throw error;
    });
    this.parent = chainKey(this.parent, step.cacheKey.digest, inputs);
    this.keys.push(this.parent);
  }
}

/** A snapshot boots nothing of its own: no entrypoint, only the labels that find it again. */
function cacheMetadata(key: string, step: PlannedStep): ProtoImageMetadata {
  return {
    entrypoint: [],
    cmd: [],
    env: [],
    user: '',
    workingDir: '',
    exposedPorts: [],
    labels: { [CACHE_KEY_LABEL]: key, [CACHE_INSTRUCTION_LABEL]: (step.expanded || step.original).slice(0, 200) },
    volumes: [],
    stopSignal: '',
    onbuild: [],
    shell: [],
  };
}
