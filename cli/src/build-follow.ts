/** Follows a build's events (WatchBuild) through a progress renderer until the build ends. */
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { BuildServiceClient, WatchBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { streamMessages } from '@kindling/runtime';
import type { ProgressRenderer } from './output/progress.ts';

/**
 * Renders every event of buildId from the first; resolves with the last state the build reported
 * (UNSPECIFIED when signal stopped the watch first).
 */
export async function followBuild(
  client: BuildServiceClient,
  buildId: string,
  renderer: ProgressRenderer,
  signal: AbortSignal,
): Promise<BuildState> {
  let final = BuildState.BUILD_STATE_UNSPECIFIED;
  try {
    const stream = client.watchBuild({ buildId, afterSequence: '0', follow: true });
    for await (const { event } of streamMessages<WatchBuildResponse>('planner', stream, signal)) {
      if (!event) continue;
      renderer.event(event);
      if (event.payload?.$case === 'state') final = event.payload.value.state;
    }
  } catch (error) {
    if (!signal.aborted) throw error;
    return BuildState.BUILD_STATE_UNSPECIFIED;
  } finally {
    renderer.close();
  }
  return final;
}

