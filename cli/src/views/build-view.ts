/** Builds and step-cache entries as `kindling builds --json` and `kindling cache ls --json` show them. */
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Build, CacheEntry } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { isoOrNull } from '../output/format.ts';

/** BUILD_STATE_SUCCEEDED → "succeeded". */
export const buildStateName = (state: BuildState): string =>
  (BuildState[state] ?? 'BUILD_STATE_UNSPECIFIED').replace('BUILD_STATE_', '').toLowerCase();

export function buildView(build: Build) {
  return {
    id: build.id,
    state: buildStateName(build.state),
    tag: build.request?.tag ?? '',
    target: build.request?.target || null,
    imageRef: build.imageRef || null,
    stepsDone: build.stepsDone,
    stepsTotal: build.stepsTotal,
    error: build.error ? { code: build.error.code, message: build.error.message, line: build.error.line || null } : null,
    vmId: build.vmId || null,
    created: isoOrNull(build.created),
    started: isoOrNull(build.started),
    finished: isoOrNull(build.finished),
    /** W3C trace id: the build's calls to the other services carry it, and their log lines. */
    traceId: build.traceId || null,
  };
}

export function cacheEntryView(entry: CacheEntry) {
  return {
    key: entry.key,
    image: entry.image,
    vmmHost: entry.vmmHost,
    sizeBytes: Number(entry.sizeBytes),
    instruction: entry.instruction,
    created: isoOrNull(entry.created),
    lastUsed: isoOrNull(entry.lastUsed),
  };
}
