/** `kindling ps [-a] [--json]`: the VMs on a vmm host (ListVms), newest first. */
import type { ListVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { formatAge, printJson, printTable } from '../output/format.ts';
import { VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { LIVE_VM_STATES, vmView } from '../views/vm-view.ts';

export const describe = 'list the VMs on a vmm host (running ones; -a for all)';

const usage = `usage: kindling ps [-a] [--json]

options:
  -a, --all                also VMs that are created, stopped or failed
      --json               one JSON document: {"vms": [{id, image, state, address, created, ...}]}
${vmmUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('ps', usage, {
    args: argv,
    options: { all: { type: 'boolean', short: 'a', default: false }, json: { type: 'boolean', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  return withService('ps', VMM, values, async (client) => {
    const { vms } = await unaryCall<ListVmsResponse>('vmm', (cb) => client.listVms({ state: 0, buildId: '' }, cb));
    const shown = values.all ? vms : vms.filter((vm) => LIVE_VM_STATES.includes(vm.state));
    const views = shown.map(vmView);
    if (values.json) printJson(process.stdout, { vms: views });
    else {
      printTable(
        process.stdout,
        ['VM ID', 'IMAGE', 'STATE', 'ADDRESS', 'CREATED'],
        views.map((vm, i) => [vm.id, vm.image, vm.state, vm.address ?? '-', formatAge(shown[i]!.created)]),
      );
    }
    return 0;
  });
}
