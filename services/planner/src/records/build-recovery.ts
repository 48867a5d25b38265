/**
 * What a planner does on start about builds an earlier run of it left unfinished (it was killed, or
 * its host went down): their records are marked FAILED, with a final state event, before it serves;
 * then whatever they left on the vmm (build VMs, intermediate stage images) is removed in the
 * background on every VM host, retried until each answers, so an unreachable vmm never keeps the planner
 * from serving.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildEvent, BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { EventBus, Logger } from '@kindling/runtime';
import { buildSubjects, errorInfo, terminalStates } from '../execution/build-events.ts';
import type { BuildGuest, BuildVmHost } from '../ports/build-services.ts';
import type { BuildRecordStore } from './ports.ts';

export const BUILD_LABEL = 'kindling.build';
export const INTERMEDIATE_PREFIX = 'kindling-intermediate/';
const RESTART_REASON_PREFIX = 'the planner restarted while the build was ';

export function restartReason(state: BuildState): string {
  return `${RESTART_REASON_PREFIX}${(BuildState[state] ?? String(state)).replace(/^BUILD_STATE_/, '').toLowerCase()}`;
}

function failedByRestart(build: Build): boolean {
  return build.state === BuildState.BUILD_STATE_FAILED && (build.error?.message.startsWith(RESTART_REASON_PREFIX) ?? false);
}

/**
 * Marks every unfinished record FAILED and publishes its final state event, numbered after the last
 * one the bus holds for it (so WatchBuild sees it end). Returns the builds it failed.
 */
export async function failInterruptedBuilds(records: BuildRecordStore, bus: EventBus, log: Logger): Promise<Build[]> {
  const interrupted = (await records.list()).filter((build) => !terminalStates.has(build.state));
  for (const build of interrupted) {
    const previousState = build.state;
    const error = errorInfo({ code: 'ABORTED', message: restartReason(previousState) });
    const sequence = (await lastSequenceOf(build, bus, log)) + 1;
    Object.assign(build, { state: BuildState.BUILD_STATE_FAILED, error, finished: new Date(), lastSequence: String(sequence), vmId: '' });
    await records.put(build);
    const event: BuildEvent = {
      buildId: build.id,
      sequence: String(sequence),
      time: new Date(),
      payload: { $case: 'state', value: { state: BuildState.BUILD_STATE_FAILED, previousState, error, imageRef: '', vmId: '' } },
    };
    await bus.publish(buildSubjects(build.id).state, BuildEvent.encode(event).finish()).catch((e: unknown) => log.error({ err: e, buildId: build.id }, 'could not publish a build event'));
    log.warn({ buildId: build.id, previousState: BuildState[previousState] }, 'build failed: the planner restarted while it ran');
  }
  return interrupted;
}

/**
 * The last event the build's watchers can have seen: the bus's, when it keeps history (log events
 * after the record's last save are only there, and a record saved as its event went out may be one
 * ahead of a bus that never got it); else the record's.
 */
async function lastSequenceOf(build: Build, bus: EventBus, log: Logger): Promise<number> {
  let last = 0;
  try {
    for await (const message of bus.history(buildSubjects(build.id).all)) last = Math.max(last, Number(BuildEvent.decode(message.data).sequence));
  } catch (error) {
    log.warn({ err: error, buildId: build.id }, 'could not read the build\'s event history; numbering its final event after its record');
  }
  return last > 0 ? last : Number(build.lastSequence);
}

export interface SweepOutcome {
  vms: string[];
  images: string[];
}

export interface SweepOptions {
  firstRetryMs?: number;
  maxRetryMs?: number;
}

export type SweptHost = Pick<BuildVmHost, 'listVms' | 'deleteVm' | 'listImages' | 'deleteImage'> & { readonly hostName?: string };

/**
 * Removes what finished builds left on the vmm hosts: VMs labelled kindling.build=<id> (a finished
 * build has none of its own any more), and its kindling-intermediate/<id>:* images unless the build
 * asked to keep them and was not cut short by a restart. Builds running in this planner are never
 * touched. Every configured host is swept, so the host a record names is, whatever it was called then.
 */
export class LeftoverSweeper {
  private readonly hosts: readonly SweptHost[];

  constructor(
    vmHosts: SweptHost | readonly SweptHost[],
    private readonly guest: Pick<BuildGuest, 'closeSession'>,
    private readonly records: BuildRecordStore,
    private readonly log: Logger,
  ) {
    this.hosts = Array.isArray(vmHosts) ? vmHosts : [vmHosts as SweptHost];
  }

  /** One pass over every host; throws when a vmm could not be asked or something could not be removed. */
  async sweep(signal: AbortSignal): Promise<SweepOutcome> {
    const finished = (await this.records.list()).filter((build) => terminalStates.has(build.state));
    const removed: SweepOutcome = { vms: [], images: [] };
    const failures: string[] = [];
    for (const host of this.hosts) {
      try {
        const outcome = await this.sweepHost(host, finished, signal);
        removed.vms.push(...outcome.vms);
        removed.images.push(...outcome.images);
      } catch (error) {
        failures.push(this.hosts.length > 1 ? `on ${host.hostName ?? 'a host'}: ${(error as Error).message}` : (error as Error).message);
      }
    }
    if (failures.length > 0) throw new Error(failures.join('; '));
    return removed;
  }

  private async sweepHost(vmHost: SweptHost, finished: readonly Build[], signal: AbortSignal): Promise<SweepOutcome> {
    const finishedIds = new Set(finished.map((build) => build.id));
    const stagesGo = new Set(finished.filter((build) => !build.request?.keepStages || failedByRestart(build)).map((build) => build.id));
    const vms = (await vmHost.listVms(signal)).filter((vm) => finishedIds.has(vm.spec?.labels[BUILD_LABEL] ?? ''));
    const images = (await vmHost.listImages(signal, { includeInternal: true }))
      .filter((image) => image.name.startsWith(INTERMEDIATE_PREFIX) && stagesGo.has(image.name.slice(INTERMEDIATE_PREFIX.length)))
      .map((image) => `${image.name}:${image.tag}`);
    const failures: string[] = [];
    const removed: SweepOutcome = { vms: [], images: [] };
    for (const vm of vms) {
      await this.guest.closeSession(vm.id).catch(() => {});
      await vmHost.deleteVm(vm.id).then(
        () => removed.vms.push(vm.id),
        (error: unknown) => failures.push(`VM ${vm.id}: ${(error as Error).message}`),
      );
    }
    // after the VMs: a VM booted from an intermediate image may hold it
    for (const image of images) {
      await vmHost.deleteImage(image).then(
        () => removed.images.push(image),
        (error: unknown) => failures.push(`image ${image}: ${(error as Error).message}`),
      );
    }
    if (removed.vms.length + removed.images.length > 0) this.log.info({ ...removed, vmmHost: vmHost.hostName }, 'removed what finished builds left on the vmm');
    if (failures.length > 0) throw new Error(`could not remove ${failures.join('; ')}`);
    return removed;
  }

  /** Sweeps until one pass succeeds or signal aborts, waiting longer after each failure (logged). */
  async sweepUntilClean(signal: AbortSignal, options: SweepOptions = {}): Promise<void> {
    const maxRetryMs = options.maxRetryMs ?? 60_000;
    let waitMs = options.firstRetryMs ?? 1000;
    for (;;) {
      try {
        await this.sweep(signal);
        return;
      } catch (error) {
        if (signal.aborted) return;
        this.log.warn({ err: error, retryInMs: waitMs }, 'could not clean up after interrupted builds; retrying');
      }
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        return;
      }
      waitMs = Math.min(waitMs * 2, maxRetryMs);
    }
  }
}

export interface Recovery {
  /** The builds failed because the planner restarted while they ran. */
  readonly interrupted: readonly Build[];
  /** Resolves once the vmm is clean of finished builds, or recovery was stopped. */
  readonly swept: Promise<void>;
  /** Stops retrying the sweep (on shutdown) and waits for a pass under way. */
  stop(): Promise<void>;
}

/** Fails the interrupted builds now, then sweeps the vmm in the background. */
export async function recoverBuilds(
  deps: { records: BuildRecordStore; bus: EventBus; vmHost: ConstructorParameters<typeof LeftoverSweeper>[0]; guest: Pick<BuildGuest, 'closeSession'>; log: Logger },
  options: SweepOptions = {},
): Promise<Recovery> {
  const log = deps.log.child({ component: 'recovery' });
  const interrupted = await failInterruptedBuilds(deps.records, deps.bus, log);
  const stopping = new AbortController();
  const swept = new LeftoverSweeper(deps.vmHost, deps.guest, deps.records, log).sweepUntilClean(stopping.signal, options);
  return {
    interrupted,
    swept,
    async stop() {
      stopping.abort();
      await swept;
    },
  };
}
