/** `kindling cancel BUILD...`: cancels builds (CancelBuild): the VM is stopped and removed, nothing committed. */
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { CancelBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { PLANNER, plannerOptions, plannerUsage, usageError, withService } from '../service-call.ts';
import { buildStateName } from '../views/build-view.ts';

export const describe = 'cancel builds (their VM is removed, nothing is committed)';

const usage = `usage: kindling cancel BUILD...

options:
${plannerUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('cancel', usage, { args: argv, allowPositionals: true, options: { ...plannerOptions } });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('cancel', 'needs a BUILD id', usage);
  return withService('cancel', PLANNER, values, async (client) => {
    for (const buildId of positionals) {
      const { build } = await unaryCall<CancelBuildResponse>('planner', (cb) =>
        client.cancelBuild({ buildId, reason: 'cancelled with kindling cancel' }, cb),
      );
      const state = build?.state ?? BuildState.BUILD_STATE_UNSPECIFIED;
      process.stdout.write(
        state === BuildState.BUILD_STATE_CANCELLED ? `${buildId} cancelled\n` : `${buildId} had already ended: ${buildStateName(state)}\n`,
      );
    }
    return 0;
  });
}
