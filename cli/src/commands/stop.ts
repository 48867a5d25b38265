/** `kindling stop [-t SECONDS] [--force] VM...`: graceful power-off, killed after the timeout (StopVm). */
import type { StopVmResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { notWholeNumber, parseCommandLine } from '../command-line.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';

export const describe = 'stop VMs: the guest powers off, or is killed after the timeout';

const usage = `usage: kindling stop [-t SECONDS] [--force] VM...

options:
  -t, --timeout SECONDS    how long the guest may take to power off before it is killed (default the vmm's, 30)
      --force              kill at once, without asking the guest
${vmmUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('stop', usage, {
    args: argv,
    allowPositionals: true,
    options: { timeout: { type: 'string', short: 't' }, force: { type: 'boolean', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('stop', 'needs a VM id', usage);
  const badNumber = notWholeNumber(values, ['timeout']);
  if (badNumber) return usageError('stop', badNumber, usage);
  return withService('stop', VMM, values, async (client) => {
    for (const vmId of positionals) {
      const { graceful } = await unaryCall<StopVmResponse>('vmm', (cb) =>
        client.stopVm({ vmId, ...(values.timeout ? { timeout: { seconds: values.timeout, nanos: 0 } } : {}), force: values.force }, cb),
      );
      process.stdout.write(`${vmId} stopped${graceful ? '' : ' (killed: the guest did not power off in time)'}\n`);
    }
    return 0;
  });
}
