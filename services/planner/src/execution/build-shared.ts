/** What the stages of one build share: its request and record, services, events, cache and results so far. */
import type { Build, CreateBuildRequest } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { Logger } from '@kindling/runtime';
import type { PlannedStage } from '../domain/plan.ts';
import type { BuildContextSource, BuildGuest, BuildVmHost } from '../ports/build-services.ts';
import type { VmHostPlacement } from '../ports/vm-host-placement.ts';
import type { BootGate } from './boot-gate.ts';
import type { BuildEventLog } from './build-events.ts';
import type { CacheInputSources } from './cache-inputs.ts';
import type { StepCache } from './step-cache.ts';

export interface BuildServices {
  readonly context: BuildContextSource;
  /** The host every build runs on, or a placement that picks one host per build. */
  readonly vmHost: BuildVmHost | VmHostPlacement;
  readonly guest: BuildGuest;
  /** The step cache shared by every build; without it each build gets an unlimited one of its own. */
  readonly cache?: StepCache;
  /** Told when steps end (the planner's metrics); without it nobody is. */
  readonly observer?: BuildObserver;
}

/** A build's services once it is placed: vmHost is the one host it runs on. */
export interface PlacedBuildServices extends BuildServices {
  readonly vmHost: BuildVmHost;
}

/** What the builds tell whoever watches them as they run, e.g. the metrics; it must not throw. */
export interface BuildObserver {
  /** A step that ran (not a cache hit) ended, succeeded or failed, after seconds of wall time; kind is its instruction (RUN, COPY...). */
  stepEnded(kind: string, seconds: number, succeeded: boolean): void;
}

export interface BuildRunSettings {
  readonly sshReadyTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** Disk given to a build VM beyond its base image's size. */
  readonly extraDiskBytes: number;
  /** Independent stages built at once (each in its own VM); default 2. */
  readonly maxParallelStages?: number;
  /** VMs of one build booting at once (a boot is CPU-bound); default 1. */
  readonly maxConcurrentBoots?: number;
  /** Each build VM's transfer disk, for the large files of a COPY; 0 or absent: none. */
  readonly transferDiskBytes?: number;
}

export interface StageBase {
  /** The image the stage's VM boots from when no step is cached. */
  image: string;
  /** What the base is, for the cache keys: an image digest or the base stage's effective key. */
  identity: string;
  /** Disk of the stage's VMs: the root base's size plus the extra, however many stages deep. */
  diskBytes: number;
}

export interface BuildShared {
  readonly record: Build;
  readonly request: CreateBuildRequest;
  readonly secrets: ReadonlyMap<string, Buffer>;
  readonly services: PlacedBuildServices;
  readonly settings: BuildRunSettings;
  readonly events: BuildEventLog;
  readonly log: Logger;
  readonly cache: StepCache;
  readonly contextId: string;
  readonly stageImages: ReadonlyMap<number, string>;
  /** Who of the build's stages boots next. */
  readonly boots: BootGate;
  baseOf(stage: PlannedStage): StageBase;
  /** The vmm image a --from / from= names: a stage built so far (name or index) or a stored image. */
  imageNamed(reference: string): string;
  cacheInputs(): CacheInputSources;
  /** Creates a VM and remembers it until released, so a failed build deletes it. */
  trackVm(vmId: string, create: () => Promise<Vm>): Promise<Vm>;
  releaseVm(vmId: string): Promise<void>;
  setBooting(): void;
  setRunning(): void;
  setCommitting(): void;
}
