/**
 * `kindling run IMAGE [-d] [--env K=V]... [--cpus N] [--memory MiB] [--network NAME] [--name ID] [-- ARGS...]`:
 * creates and boots a VM from IMAGE (CreateVm with start), as docker run starts a container.
 */
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { CreateVmResponse, Vm, VmmServiceClient } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { notWholeNumber, parseCommandLine } from '../command-line.ts';
import { createRunImage, hasOverrides, newRunId, parseEnvFlags, RUN_COPY_LABEL, RUN_SOURCE_LABEL, type RunOverrides } from '../run-image.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { followConsole } from '../vm-console.ts';

export const describe = 'boot a microVM from an image and follow its console (-d: print its id and return)';

const usage = `usage: kindling run [options] IMAGE [-- ARGS...]

Boots IMAGE in a new VM. ARGS replace the image's CMD (its ENTRYPOINT stays); put them after "--"
when one starts with "-". Without -d the serial
console is shown until the VM stops; Ctrl-C stops following and leaves the VM running.

options:
  -d, --detach             print the VM id and return once it is booting
  -e, --env K[=V]          environment variable for the entrypoint (repeatable; a bare K takes K from here)
      --cpus N             vCPUs (default 2)
      --memory MiB         memory (default 1024)
      --disk BYTES         root disk size (default the image's)
      --network NAME       CNI network (default the vmm's own --network)
      --kernel ID          kernel to boot (default the image's)
      --name ID            VM id (lowercase letters, digits, -; default one the vmm picks)
      --ssh-key PUBKEY     public key authorised to log in as root (repeatable)
${vmmUsage}`;

async function createVm(client: VmmServiceClient, image: string, vmId: string, values: Record<string, unknown>, labels: Record<string, string>): Promise<Vm> {
  const { vm } = await unaryCall<CreateVmResponse>('vmm', (cb) =>
    client.createVm(
      {
        vmId,
        start: true,
        spec: {
          image,
          kernelId: String(values.kernel ?? ''),
          vcpus: Number(values.cpus ?? 0),
          memoryMib: Number(values.memory ?? 0),
          diskSizeBytes: String(values.disk ?? '0'),
          network: String(values.network ?? ''),
          authorizedKeys: (values['ssh-key'] as string[] | undefined) ?? [],
          hostname: '',
          extraKernelArgs: '',
          labels,
          buildId: '',
          transferDiskBytes: '0',
        },
      },
      cb,
    ),
  );
  return vm!;
}

/** Boots image as asked: straight, or through a per-run copy carrying --env and ARGS (removed again if the boot fails). */
async function boot(client: VmmServiceClient, image: string, overrides: RunOverrides, values: Record<string, unknown>): Promise<Vm> {
  const name = typeof values.name === 'string' ? values.name : '';
  if (!hasOverrides(overrides)) return createVm(client, image, name, values, {});
  const vmId = name || newRunId();
  const copy = await createRunImage(client, image, vmId, overrides);
  try {
    return await createVm(client, copy, vmId, values, { [RUN_SOURCE_LABEL]: image, [RUN_COPY_LABEL]: copy });
  } catch (error) {
    await unaryCall<unknown>('vmm', (cb) => client.deleteImage({ image: copy }, cb)).catch(() => {});
    throw error;
  }
}

/** Shows the console until the VM ends (exit 0 stopped, 1 failed) or Ctrl-C (exit 0, the VM runs on). */
async function attach(client: VmmServiceClient, vm: Vm): Promise<number> {
  const followed = await followConsole(client, vm, process.stdout);
  if (followed.interrupted) {
    process.stderr.write(`kindling run: stopped following; VM ${vm.id} keeps running (kindling logs -f ${vm.id}, kindling stop ${vm.id})\n`);
    return 0;
  }
  if (followed.end?.state === VmState.VM_STATE_FAILED) {
    process.stderr.write(`kindling run: VM ${vm.id} failed${followed.end.reason ? `: ${followed.end.reason}` : ''}\n`);
    return 1;
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('run', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      detach: { type: 'boolean', short: 'd', default: false },
      env: { type: 'string', short: 'e', multiple: true },
      cpus: { type: 'string' },
      memory: { type: 'string' },
      disk: { type: 'string' },
      network: { type: 'string' },
      kernel: { type: 'string' },
      name: { type: 'string' },
      'ssh-key': { type: 'string', multiple: true },
      ...vmmOptions,
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [image, ...args] = positionals;
  if (!image) return usageError('run', 'needs IMAGE', usage);
  const badNumber = notWholeNumber(values, ['cpus', 'memory', 'disk']);
  if (badNumber) return usageError('run', badNumber, usage);
  let overrides: RunOverrides;
  try {
    overrides = { env: parseEnvFlags(values.env), args };
  } catch (error) {
    return usageError('run', (error as Error).message, usage);
  }
  return withService('run', VMM, values, async (client) => {
    const vm = await boot(client, image, overrides, values);
    if (values.detach) {
      process.stdout.write(`${vm.id}\n`);
      return 0;
    }
    return attach(client, vm);
  });
}
