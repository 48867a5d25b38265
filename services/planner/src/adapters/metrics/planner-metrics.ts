/**
 * The planner's own metrics, in the process registry: kindling_builds{state} counted from the build
 * records at scrape time, and kindling_build_step_duration_seconds{kind} observed as steps end.
 */
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { registerCountsGauge, registerDurationHistogram, type Logger } from '@kindling/runtime';
import type { BuildObserver } from '../../execution/build-shared.ts';

/** BUILD_STATE_FAILED -> FAILED */
const stateName = (state: BuildState): string => (BuildState[state] ?? `STATE_${state}`).replace(/^BUILD_STATE_/, '');

const knownStates = Object.values(BuildState)
  .filter((v): v is BuildState => typeof v === 'number' && v !== BuildState.BUILD_STATE_UNSPECIFIED && v !== BuildState.UNRECOGNIZED)
  .map(stateName);

/** Steps take from a fraction of a second (ENV, a small COPY) to an hour (a compiler's RUN). */
const stepBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

/** Registers kindling_build_step_duration_seconds; the observer goes in the BuildCoordinator's services. */
export function stepDurationObserver(): BuildObserver {
  const observe = registerDurationHistogram({
    name: 'kindling_build_step_duration_seconds',
    help: 'Wall time of build steps that ran (cache hits excluded), succeeded or failed, by instruction kind',
    labels: ['kind'],
    buckets: stepBuckets,
  });
  return { stepEnded: (kind, seconds) => observe({ kind }, seconds) };
}

/** Registers kindling_builds{state}, read from the builds' records at each scrape. */
export function registerBuildsGauge(builds: { countByState(): Promise<Map<BuildState, number>> }, log: Logger): void {
  registerCountsGauge({
    name: 'kindling_builds',
    help: 'Builds by state, from the build records of this planner',
    label: 'state',
    values: knownStates,
    count: async () => new Map([...(await builds.countByState())].map(([state, n]) => [stateName(state), n])),
    onError: (error) => log.warn({ err: error }, 'could not count the builds for the metrics'),
  });
}
