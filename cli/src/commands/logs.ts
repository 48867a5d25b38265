/** `kindling logs [-f] VM`: a VM's serial console log; -f follows it until the VM stops (or Ctrl-C). */
import type { GetVmResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { copyConsole, followConsole } from '../vm-console.ts';

export const describe = "print a VM's serial console log (-f: follow it until the VM stops)";

const usage = `usage: kindling logs [-f] VM

The log is the console file the vmm writes on its host (Vm.console_log_path): run this on that host.

options:
  -f, --follow             keep printing new output until the VM stops or is removed; Ctrl-C stops following
${vmmUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('logs', usage, {
    args: argv,
    allowPositionals: true,
    options: { follow: { type: 'boolean', short: 'f', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('logs', 'needs one VM id', usage);
  return withService('logs', VMM, values, async (client) => {
    const { vm } = await unaryCall<GetVmResponse>('vmm', (cb) => client.getVm({ vmId: positionals[0]! }, cb));
    if (!values.follow) {
      await copyConsole(vm!, process.stdout, { follow: false });
      return 0;
    }
    await followConsole(client, vm!, process.stdout);
    return 0;
  });
}
