/**
 * Runs one build: resolve the context, plan, then build every needed stage (independent stages at
 * once, up to a limit, each in its own VM), taking what the step cache holds. The target stage is
 * committed as the requested tag; the others as temporary images, removed at the end unless kept.
 * Whatever happens, the build's VMs are removed before its final state is published.
 */
import { BuildState, type ErrorInfo } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build, CreateBuildRequest } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { Image, Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { ResolveContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { DomainError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError, type Logger } from '@kindling/runtime';
import type { BuildPlan, PlanOutcome, PlannedStage } from '../domain/plan.ts';
import { planDockerfile } from '../domain/planner.ts';
import type { BuildVmHost } from '../ports/build-services.ts';
import { isPlacement, singleHostPlacement } from '../ports/vm-host-placement.ts';
import { BootGate } from './boot-gate.ts';
import { BuildEventLog, errorInfo } from './build-events.ts';
import type { BuildRunSettings, BuildServices, BuildShared, PlacedBuildServices, StageBase } from './build-shared.ts';
import type { CacheInputSources } from './cache-inputs.ts';
import { catalogOf } from './image-metadata.ts';
import { StageBuild } from './stage-build.ts';
import { runStagesInOrder } from './stage-scheduler.ts';
import { InMemoryLastUse, StepCache } from './step-cache.ts';
import { StepCommandFailed } from './step-executor.ts';

export type { BuildRunSettings, BuildServices } from './build-shared.ts';

const DEFAULT_DISK_BYTES = 2 * 1024 ** 3;

/** Formats plan errors as one message, each with its line, as `docker build` prints them. */
function planFailure(file: string, diagnostics: { line: number; column: number; message: string; severity: string }[]): InvalidArgumentError {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  return new InvalidArgumentError(errors.map((d) => `${file}:${d.line}:${d.column}: ${d.message}`).join('\n'));
}

interface FailurePoint {
  stage: number;
  step: number;
  line: number;
  output: string;
}

export class BuildRun implements BuildShared {
  contextId = '';
  readonly stageImages = new Map<number, string>();
  readonly boots: BootGate;
  private readonly stageKeys = new Map<number, string>();
  private readonly vms = new Set<string>();
  private readonly temporaryImages: string[] = [];
  private images: Image[] = [];
  private plan_: BuildPlan | undefined;
  /** Set when the build is placed on its VM host (while planning). */
  private placed: { services: PlacedBuildServices; cache: StepCache } | undefined;

  constructor(
    readonly record: Build,
    readonly request: CreateBuildRequest,
    readonly secrets: ReadonlyMap<string, Buffer>,
    private readonly given: BuildServices,
    readonly settings: BuildRunSettings,
    readonly events: BuildEventLog,
    readonly log: Logger,
  ) {
    this.boots = new BootGate(settings.maxConcurrentBoots ?? 1);
  }

  /** The services with the build's one VM host; only once it is placed. */
  get services(): PlacedBuildServices {
    if (!this.placed) throw new InternalError('the build used its VM host before it was placed');
    return this.placed.services;
  }

  /** The step cache on the build's VM host. */
  get cache(): StepCache {
    if (!this.placed) throw new InternalError('the build used the step cache before it was placed');
    return this.placed.cache;
  }

  private placeOn(host: BuildVmHost): void {
    const cache = this.given.cache?.on(host) ?? new StepCache(host, new InMemoryLastUse(), 0, this.log);
    this.placed = { services: { ...this.given, vmHost: host }, cache };
    this.record.vmmHost = host.hostName;
  }

  private setState(state: BuildState, extra: { error?: ErrorInfo; imageRef?: string } = {}): void {
    const previous = this.record.state;
    if (previous === state && !extra.error && !extra.imageRef) return; // concurrent stages pass through the same states
    this.record.state = state;
    this.record.lastSequence = String(this.events.lastSequence + 1);
    const vmId = [...this.vms].at(-1) ?? '';
    this.events.state({ state, previousState: previous, imageRef: extra.imageRef ?? '', vmId, ...(extra.error ? { error: extra.error } : {}) });
    this.log.info({ state: BuildState[state] }, 'build state');
  }

  setBooting(): void {
    this.setState(BuildState.BUILD_STATE_BOOTING);
  }
  setRunning(): void {
    this.setState(BuildState.BUILD_STATE_RUNNING);
  }
  setCommitting(): void {
    this.setState(BuildState.BUILD_STATE_COMMITTING);
  }

  async trackVm(vmId: string, create: () => Promise<Vm>): Promise<Vm> {
    // tracked before the call returns: a cancel mid-CreateVm must still delete whatever it made
    this.vms.add(vmId);
    const vm = await create();
    this.record.vmId = vm.id;
    this.record.vmmHost = this.services.vmHost.hostName;
    return vm;
  }

  async releaseVm(vmId: string): Promise<void> {
    await this.services.vmHost.deleteVm(vmId);
    this.vms.delete(vmId);
  }

  /**
   * Runs the build to its end; never throws (the outcome is in the record and the events). The final
   * state is published only after the build VMs and temporary images are gone, so a watcher that sees
   * the build end can rely on nothing of it being left on the host.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.record.started = new Date();
    let failedAt: FailurePoint = { stage: -1, step: -1, line: 0, output: '' };
    let outcome: { state: BuildState; error?: ErrorInfo; imageRef?: string };
    try {
      this.setState(BuildState.BUILD_STATE_PLANNING);
      const plan = await this.plan(signal);
      this.record.stepsTotal = plan.stages.reduce((n, s) => n + s.steps.length, 0);
      await runStagesInOrder(plan.stages, this.settings.maxParallelStages ?? 2, signal, async (stage, stageSignal, awaitStage) => {
        const isTarget = stage.index === plan.targetStage;
        const tag = isTarget ? this.request.tag : `kindling-intermediate/${this.record.id}:stage-${stage.index}`;
        if (!isTarget) this.temporaryImages.push(tag);
        const point: FailurePoint = { stage: stage.index, step: -1, line: stage.line, output: '' };
        const build = new StageBuild(this, stage, tag, isTarget, (step, line) => Object.assign(point, { step, line }));
        try {
          const { key } = await build.build(stageSignal, awaitStage);
          this.stageKeys.set(stage.index, key);
          this.stageImages.set(stage.index, tag);
        } catch (error) {
          if (failedAt.stage === -1) failedAt = { ...point, output: build.lastOutput };
          throw error;
        }
      });
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
    if (this.placed) await this.cache.enforceLimit();
    if (outcome.imageRef) this.record.imageRef = outcome.imageRef;
    if (outcome.error) this.record.error = outcome.error;
    this.record.finished = new Date();
    this.setState(outcome.state, outcome);
    await this.events.flushed();
  }

  private describeFailure(error: unknown, cancelled: boolean, at: FailurePoint): ErrorInfo {
    const base = { stageIndex: at.stage, stepIndex: at.step, line: at.line, outputTail: at.output };
    if (cancelled) return errorInfo({ ...base, code: 'CANCELLED', message: `build cancelled: ${(error as Error).message}` });
    if (error instanceof StepCommandFailed) {
      return errorInfo({ ...base, code: 'ABORTED', message: error.message, ...(error.exit.exitCode === undefined ? {} : { exitCode: error.exit.exitCode }) });
    }
    if (error instanceof DomainError) return errorInfo({ ...base, code: error.code, message: error.message });
    return errorInfo({ ...base, code: 'INTERNAL', message: (error as Error).message ?? String(error) });
  }

  private async plan(signal: AbortSignal): Promise<BuildPlan> {
    const resolved = await this.given.context.resolve(this.request.source!, signal);
    this.contextId = resolved.contextId;
    // the fetcher answers a context without the default Dockerfile as files only (COPY --from, ADD git)
    if (resolved.contextId !== '' && resolved.dockerfilePath === '') {
      throw new NotFoundError(`Dockerfile "Dockerfile" is not in ${resolved.displayRoot}: add one, or name it with dockerfile_path`);
    }
    // planned against every host's images first, for the images the build needs; then placed, and
    // planned again against the chosen host's own (their digests key the step cache)
    const placement = isPlacement(this.given.vmHost) ? this.given.vmHost : singleHostPlacement(this.given.vmHost);
    this.images = await placement.listImages(signal);
    let outcome = this.planWith(resolved, this.images);
    const host = await placement.place({ images: outcome.plan.imageDependencies.map((d) => d.image) }, signal);
    this.placeOn(host);
    if (isPlacement(this.given.vmHost)) {
      this.images = await host.listImages(signal);
      outcome = this.planWith(resolved, this.images);
    }
    for (const d of outcome.diagnostics) this.events.system(-1, -1, `warning: line ${d.line}: ${d.message}`);
    this.plan_ = outcome.plan;
    return outcome.plan;
  }

  private planWith(resolved: ResolveContextResponse, images: Image[]): Extract<PlanOutcome, { ok: true }> {
    const outcome = planDockerfile(resolved.dockerfile, {
      buildArgs: this.request.buildArgs,
      ...(this.request.target ? { target: this.request.target } : {}),
      images: catalogOf(images),
      mode: 'build',
    });
    if (!outcome.ok) throw planFailure(resolved.dockerfilePath || 'Dockerfile', outcome.diagnostics);
    return outcome;
  }

  private imageByReference(reference: string): Image | undefined {
    const ref = reference.includes(':') ? reference : `${reference}:latest`;
    return this.images.find((i) => `${i.name}:${i.tag}` === ref || i.aliases.includes(ref));
  }

  baseOf(stage: PlannedStage): StageBase {
    const base = stage.base;
    if (base.kind === 'stage') {
      const image = this.stageImages.get(base.stageIndex);
      const parent = this.plan_?.stages.find((s) => s.index === base.stageIndex);
      if (image === undefined || !parent) throw new FailedPreconditionError(`line ${stage.line}: stage ${base.stageIndex} was not built before stage ${stage.index}`);
      return { image, identity: `stage:${this.stageKeys.get(base.stageIndex) ?? ''}`, diskBytes: this.baseOf(parent).diskBytes };
    }
    if (base.kind === 'image') {
      const image = this.imageByReference(`${base.name}:${base.tag}`);
      const size = image ? Number(image.sizeBytes) : DEFAULT_DISK_BYTES;
      return { image: `${base.name}:${base.tag}`, identity: `image:${image?.digest ?? base.reference}`, diskBytes: size + this.settings.extraDiskBytes };
    }
    // FROM scratch: assembled on the planner, never booted (a stage FROM this one boots its image)
    return { image: '', identity: 'scratch', diskBytes: DEFAULT_DISK_BYTES + this.settings.extraDiskBytes };
  }

  /** The stage a --from / from= names: "stage:<n>" as the plan writes it, a stage name or an index. */
  private stageNamed(reference: string): PlannedStage | undefined {
    const stages = this.plan_?.stages ?? [];
    const index = /^stage:(\d+)$/.exec(reference)?.[1] ?? reference;
    return stages.find((s) => (s.name !== '' && s.name === reference.toLowerCase()) || String(s.index) === index);
  }

  imageNamed(reference: string): string {
    const stage = this.stageNamed(reference);
    if (stage) {
      const image = this.stageImages.get(stage.index);
      if (image === undefined) throw new FailedPreconditionError(`stage "${reference}" was not built before it was needed`);
      return image;
    }
    const image = this.imageByReference(reference);
    if (!image) throw new NotFoundError(`image "${reference}" is not in the vmm's image store (kindling images lists them)`);
    return `${image.name}:${image.tag}`;
  }

  cacheInputs(): CacheInputSources {
    return {
      context: this.given.context,
      contextId: this.contextId,
      stageKeys: this.stageKeys,
      imageDigest: (reference) => this.imageByReference(reference)?.digest ?? `unknown:${reference}`,
      stageOf: (from) => this.stageNamed(from)?.index,
    };
  }

  /** Removes the build VMs and temporary images; failures here are logged, never hidden as success. */
  private async cleanUp(): Promise<void> {
    for (const vmId of [...this.vms]) {
      await this.services.guest.closeSession(vmId).catch(() => {});
      await this.releaseVm(vmId).catch((error: unknown) => this.log.error({ err: error, vmId }, 'could not delete the build VM'));
    }
    if (this.request.keepStages) return;
    for (const image of this.temporaryImages) {
      await this.services.vmHost.deleteImage(image).catch((error: unknown) => {
        if (!(error instanceof DomainError && error.code === 'NOT_FOUND')) this.log.error({ err: error, image }, 'could not delete a temporary image');
      });
    }
  }
}
