/**
 * Runs one build: resolve the context, plan, then for each needed stage boot a VM from its base, run
 * its steps over SSH, stop the VM and commit its root filesystem. The target stage is committed as the
 * requested tag; intermediate stages (used by a later FROM) as temporary images removed at the end.
 * Whatever happens, the build VM and temporary images are removed.
 */
import { BuildState, LogStream, StepState, type ErrorInfo } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build, CreateBuildRequest } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { SshTarget } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { DomainError, FailedPreconditionError, InvalidArgumentError, type Logger } from '@kindling/runtime';
import ssh2 from 'ssh2';
import type { BuildPlan, PlannedStage, PlannedStep } from '../domain/plan.ts';
import { planDockerfile } from '../domain/planner.ts';
import type { BuildContextSource, BuildGuest, BuildVmHost } from '../ports/build-services.ts';
import { BuildEventLog, errorInfo } from './build-events.ts';
import { catalogOf, toProtoImageMetadata } from './image-metadata.ts';
import { executeStep, StepCommandFailed } from './step-executor.ts';

export interface BuildServices {
  readonly context: BuildContextSource;
  readonly vmHost: BuildVmHost;
  readonly guest: BuildGuest;
}

export interface BuildRunSettings {
  readonly sshReadyTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** Disk given to a build VM beyond its base image's size. */
  readonly extraDiskBytes: number;
}

const outputTailBytes = 4096;

/** Formats plan errors as one message, each with its line, as `docker build` prints them. */
function planFailure(file: string, diagnostics: { line: number; column: number; message: string; severity: string }[]): InvalidArgumentError {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  return new InvalidArgumentError(errors.map((d) => `${file}:${d.line}:${d.column}: ${d.message}`).join('\n'));
}

export class BuildRun {
  private vmId: string | undefined;
  private contextId = '';
  /** Base image sizes by every name they go by, to size build VM disks. */
  private imageSizes = new Map<string, number>();
  private readonly temporaryImages: string[] = [];
  private outputTail = Buffer.alloc(0);
  private readonly stageImages = new Map<number, string>();

  constructor(
    private readonly record: Build,
    private readonly request: CreateBuildRequest,
    private readonly secrets: ReadonlyMap<string, Buffer>,
    private readonly services: BuildServices,
    private readonly settings: BuildRunSettings,
    private readonly events: BuildEventLog,
    private readonly log: Logger,
  ) {}

  private setState(state: BuildState, extra: { error?: ErrorInfo; imageRef?: string } = {}): void {
    const previous = this.record.state;
    this.record.state = state;
    this.record.lastSequence = String(this.events.lastSequence + 1);
    this.events.state({ state, previousState: previous, imageRef: extra.imageRef ?? '', vmId: this.vmId ?? '', ...(extra.error ? { error: extra.error } : {}) });
    this.log.info({ state: BuildState[state] }, 'build state');
  }

  /**
   * Runs the build to its end; never throws (the outcome is in the record and the events). The final
   * state is published only after the build VM and temporary images are gone, so a watcher that sees
   * the build end can rely on nothing of it being left on the host.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.record.started = new Date();
    let failedAt: { stage: number; step: number; line: number } = { stage: -1, step: -1, line: 0 };
    let outcome: { state: BuildState; error?: ErrorInfo; imageRef?: string };
    try {
      this.setState(BuildState.BUILD_STATE_PLANNING);
      const plan = await this.plan(signal);
      this.record.stepsTotal = plan.stages.reduce((n, s) => n + s.steps.length, 0);
      let builtStages = new Map<number, string>();
      for (const stage of plan.stages) {
        const isTarget = stage.index === plan.targetStage;
        const tag = isTarget ? this.request.tag : `kindling-intermediate/${this.record.id}:stage-${stage.index}`;
        failedAt = { stage: stage.index, step: -1, line: stage.line };
        await this.buildStage(stage, builtStages, tag, isTarget, (step, line) => (failedAt = { stage: stage.index, step, line }), signal);
        if (!isTarget) this.temporaryImages.push(tag);
        builtStages = new Map([...builtStages, [stage.index, tag]]);
        this.stageImages.set(stage.index, tag);
      }
      outcome = { state: BuildState.BUILD_STATE_SUCCEEDED, imageRef: this.request.tag };
    } catch (error) {
      const cancelled = signal.aborted;
      if (!cancelled) this.log.warn({ err: error }, 'build failed');
      outcome = {
        state: cancelled ? BuildState.BUILD_STATE_CANCELLED : BuildState.BUILD_STATE_FAILED,
        error: this.describeFailure(error, cancelled, failedAt),
      };
    }
    await this.cleanUp();
    if (outcome.imageRef) this.record.imageRef = outcome.imageRef;
    if (outcome.error) this.record.error = outcome.error;
    this.record.finished = new Date();
    this.setState(outcome.state, outcome);
    await this.events.flushed();
  }

  private describeFailure(error: unknown, cancelled: boolean, at: { stage: number; step: number; line: number }): ErrorInfo {
    const base = { stageIndex: at.stage, stepIndex: at.step, line: at.line, outputTail: this.outputTail.toString('utf8') };
    if (cancelled) return errorInfo({ ...base, code: 'CANCELLED', message: `build cancelled: ${(error as Error).message}` });
    if (error instanceof StepCommandFailed) {
      return errorInfo({ ...base, code: 'ABORTED', message: error.message, ...(error.exit.exitCode === undefined ? {} : { exitCode: error.exit.exitCode }) });
    }
    if (error instanceof DomainError) return errorInfo({ ...base, code: error.code, message: error.message });
    return errorInfo({ ...base, code: 'INTERNAL', message: (error as Error).message ?? String(error) });
  }

  private async plan(signal: AbortSignal): Promise<BuildPlan> {
    const resolved = await this.services.context.resolve(this.request.source!, signal);
    this.contextId = resolved.contextId;
    const images = await this.services.vmHost.listImages(signal);
    const outcome = planDockerfile(resolved.dockerfile, {
      buildArgs: this.request.buildArgs,
      ...(this.request.target ? { target: this.request.target } : {}),
      images: catalogOf(images),
      mode: 'build',
    });
    if (!outcome.ok) throw planFailure(resolved.dockerfilePath || 'Dockerfile', outcome.diagnostics);
    for (const d of outcome.diagnostics) this.events.system(-1, -1, `warning: line ${d.line}: ${d.message}`);
    const scratch = outcome.plan.stages.find((s) => s.base.kind === 'scratch');
    if (scratch) throw new FailedPreconditionError(`line ${scratch.line}: FROM scratch cannot boot a microVM: start from a base OS such as debian:bookworm`);
    this.imageSizes = new Map(images.map((i) => [`${i.name}:${i.tag}`, Number(i.sizeBytes)]));
    for (const image of images) for (const alias of image.aliases) this.imageSizes.set(alias, Number(image.sizeBytes));
    return outcome.plan;
  }

  private async buildStage(
    stage: PlannedStage,
    builtStages: ReadonlyMap<number, string>,
    tag: string,
    isTarget: boolean,
    onStep: (step: number, line: number) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const base = stage.base.kind === 'stage' ? builtStages.get(stage.base.stageIndex) : stage.base.kind === 'image' ? `${stage.base.name}:${stage.base.tag}` : undefined;
    if (base === undefined) throw new FailedPreconditionError(`line ${stage.line}: stage ${stage.index} has no bootable base`);
    this.setState(BuildState.BUILD_STATE_BOOTING);
    const keys = ssh2.utils.generateKeyPairSync('ed25519');
    const vmId = `b-${this.record.id.slice(0, 12)}-${stage.index}`;
    this.events.system(stage.index, -1, `booting a VM from ${base}`);
    const vm = await this.services.vmHost.createVm(
      {
        vmId,
        start: true,
        spec: {
          image: base,
          kernelId: this.request.resources?.kernelId ?? '',
          vcpus: this.request.resources?.vcpus || 2,
          memoryMib: this.request.resources?.memoryMib || 1024,
          diskSizeBytes: this.request.resources?.diskSizeBytes && this.request.resources.diskSizeBytes !== '0'
            ? this.request.resources.diskSizeBytes
            : String((this.imageSizes.get(base) ?? 2 * 1024 ** 3) + this.settings.extraDiskBytes),
          network: this.request.resources?.network ?? '',
          authorizedKeys: [keys.public],
          hostname: `build-${this.record.id.slice(0, 8)}`,
          extraKernelArgs: '',
          labels: { 'kindling.build': this.record.id },
          buildId: this.record.id,
        },
      },
      signal,
    );
    this.vmId = vm.id;
    this.record.vmId = vm.id;
    this.record.vmmHost = this.services.vmHost.hostName;
    const target: SshTarget = {
      host: vm.network?.guestIp ?? '',
      port: 22,
      user: 'root',
      privateKey: keys.private,
      agentSocket: '',
      hostKey: vm.sshHostPublicKey,
      insecureIgnoreHostKey: false,
      sessionId: vm.id,
    };
    await this.services.guest.waitReady(target, this.settings.sshReadyTimeoutMs, signal);
    this.setState(BuildState.BUILD_STATE_RUNNING);
    for (const step of stage.steps) {
      onStep(step.index, step.line);
      await this.runStep(stage, step, target, signal);
    }
    this.setState(BuildState.BUILD_STATE_COMMITTING);
    await this.services.guest.closeSession(vm.id).catch(() => {});
    await this.services.vmHost.stopVm(vm.id, this.settings.stopTimeoutMs);
    const metadata = toProtoImageMetadata(stage.image);
    if (isTarget) metadata.labels = { ...metadata.labels, ...this.request.labels };
    await this.services.vmHost.commitVm({ vmId: vm.id, image: tag, metadata, shrink: false, overwrite: true, live: false });
    await this.services.vmHost.deleteVm(vm.id);
    this.vmId = undefined;
  }

  private async runStep(stage: PlannedStage, step: PlannedStep, target: SshTarget, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    const stepEvent = { stageIndex: stage.index, stepIndex: step.index, instruction: step.expanded || step.original, line: step.line, cacheKey: step.cacheKey.digest };
    this.events.step({ ...stepEvent, state: StepState.STEP_STATE_STARTED });
    this.outputTail = Buffer.alloc(0);
    try {
      await executeStep(
        {
          buildId: this.record.id,
          target,
          contextId: this.contextId,
          secrets: this.secrets,
          guest: this.services.guest,
          context: this.services.context,
          vmHost: this.services.vmHost,
          stageImages: this.stageImages,
          signal,
          onOutput: (stream: LogStream, data: Uint8Array) => {
            this.events.log(stage.index, step.index, stream, data);
            this.outputTail = Buffer.concat([this.outputTail, data]).subarray(-outputTailBytes);
          },
        },
        step,
      );
    } catch (error) {
      const exitCode = error instanceof StepCommandFailed ? error.exit.exitCode : undefined;
      this.events.step({
        ...stepEvent,
        state: StepState.STEP_STATE_FAILED,
        ...(exitCode === undefined ? {} : { exitCode }),
        error: errorInfo({ code: error instanceof DomainError ? error.code : 'ABORTED', message: (error as Error).message, stageIndex: stage.index, stepIndex: step.index, line: step.line }),
      });
      throw error;
    }
    const ms = performance.now() - started;
    this.record.stepsDone += 1;
    this.events.step({
      ...stepEvent,
      state: StepState.STEP_STATE_SUCCEEDED,
      duration: { seconds: String(Math.floor(ms / 1000)), nanos: Math.round((ms % 1000) * 1e6) },
    });
  }

  /** Removes the build VM and temporary images; failures here are logged, never hidden as success. */
  private async cleanUp(): Promise<void> {
    if (this.vmId !== undefined) {
      const vmId = this.vmId;
      await this.services.guest.closeSession(vmId).catch(() => {});
      await this.services.vmHost.deleteVm(vmId).catch((error: unknown) => this.log.error({ err: error, vmId }, 'could not delete the build VM'));
      this.vmId = undefined;
    }
    for (const image of this.temporaryImages) {
      await this.services.vmHost.deleteImage(image).catch((error: unknown) => this.log.error({ err: error, image }, 'could not delete a temporary image'));
    }
  }
}
