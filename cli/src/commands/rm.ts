/** `kindling rm [-f] VM...`: removes stopped VMs (DeleteVm) and the per-run images `kindling run` made for them. */
import type { GetVmResponse, VmmServiceClient } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { NotFoundError, unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { RUN_COPY_LABEL } from '../run-image.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { LIVE_VM_STATES, vmStateName } from '../views/vm-view.ts';

export const describe = 'remove VMs and everything they had on the host (-f: running ones too)';

const usage = `usage: kindling rm [-f] VM...

options:
  -f, --force              remove a running VM too (it is killed, not shut down)
${vmmUsage}`;

async function remove(client: VmmServiceClient, vmId: string, force: boolean): Promise<void> {
  const { vm } = await unaryCall<GetVmResponse>('vmm', (cb) => client.getVm({ vmId }, cb));
  if (!force && LIVE_VM_STATES.includes(vm!.state)) {
    throw new Error(`VM ${vmId} is ${vmStateName(vm!.state)}: stop it first (kindling stop ${vmId}) or remove it anyway with rm -f`);
  }
  await unaryCall<unknown>('vmm', (cb) => client.deleteVm({ vmId }, cb));
  const copy = vm!.spec?.labels[RUN_COPY_LABEL];
  if (copy) {
    await unaryCall<unknown>('vmm', (cb) => client.deleteImage({ image: copy }, cb)).catch((error: unknown) => {
      if (!(error instanceof NotFoundError)) throw error;
    });
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('rm', usage, {
    args: argv,
    allowPositionals: true,
    options: { force: { type: 'boolean', short: 'f', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('rm', 'needs a VM id', usage);
  return withService('rm', VMM, values, async (client) => {
    for (const vmId of positionals) {
      await remove(client, vmId, values.force);
      process.stdout.write(`${vmId}\n`);
    }
    return 0;
  });
}
