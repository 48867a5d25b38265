/** `kindling builds [--json]`: the planner's builds, newest first (ListBuilds, every page). */
import type { Build, ListBuildsResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { formatAge, printJson, printTable } from '../output/format.ts';
import { PLANNER, plannerOptions, plannerUsage, withService } from '../service-call.ts';
import { buildView } from '../views/build-view.ts';

export const describe = "list the planner's builds, newest first";

const usage = `usage: kindling builds [--json]

options:
      --json               one JSON document: {"builds": [{id, state, tag, imageRef, stepsDone, stepsTotal, error, created, ...}]}
${plannerUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('builds', usage, { args: argv, options: { json: { type: 'boolean', default: false }, ...plannerOptions } });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  return withService('builds', PLANNER, values, async (client) => {
    const builds: Build[] = [];
    let pageToken = '';
    do {
      const page = await unaryCall<ListBuildsResponse>('planner', (cb) => client.listBuilds({ pageSize: 500, pageToken, state: 0 }, cb));
      builds.push(...page.builds);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const views = builds.map(buildView);
    if (values.json) printJson(process.stdout, { builds: views });
    else {
      printTable(
        process.stdout,
        ['BUILD ID', 'STATE', 'TAG', 'STEPS', 'CREATED', 'RESULT'],
        views.map((b, i) => [b.id, b.state, b.tag, `${b.stepsDone}/${b.stepsTotal}`, formatAge(builds[i]!.created), b.imageRef ?? b.error?.message.split('\n')[0] ?? '']),
      );
    }
    return 0;
  });
}
