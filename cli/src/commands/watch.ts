/** `kindling watch [--progress MODE] BUILD`: a build's events from the start, following it to its end. */
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { parseCommandLine } from '../command-line.ts';
import { followBuild } from '../build-follow.ts';
import { interruptSignal } from '../interrupt.ts';
import { isProgressMode, progressRenderer, PROGRESS_MODES } from '../output/progress.ts';
import { PLANNER, plannerOptions, plannerUsage, usageError, withService } from '../service-call.ts';

export const describe = "show a build's progress from the start and follow it to the end";

const usage = `usage: kindling watch [--progress MODE] BUILD

Exits 0 when the build succeeds, 1 when it fails or is cancelled. Ctrl-C stops watching (the build
runs on; kindling cancel BUILD stops it).

options:
      --progress MODE      auto, tty, plain or json, as for kindling build
${plannerUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('watch', usage, {
    args: argv,
    allowPositionals: true,
    options: { progress: { type: 'string', default: 'auto' }, ...plannerOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('watch', 'needs one BUILD id', usage);
  if (!isProgressMode(values.progress)) return usageError('watch', `--progress "${values.progress}": expected one of ${PROGRESS_MODES.join(', ')}`, usage);
  const progress = progressRenderer(values.progress, process.stdout);
  return withService('watch', PLANNER, values, async (client) => {
    const interrupt = interruptSignal();
    try {
      const final = await followBuild(client, positionals[0]!, progress, interrupt.signal);
      if (interrupt.signal.aborted) return 0;
      return final === BuildState.BUILD_STATE_SUCCEEDED ? 0 : 1;
    } finally {
      interrupt.dispose();
    }
  });
}
