/** `kindling inspect VM [--json]`: one VM (GetVm) with the metadata of the image it boots (GetImage). */
import type { GetImageResponse, GetVmResponse, Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { NotFoundError, unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { printJson } from '../output/format.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { metadataView } from '../views/image-view.ts';
import { vmView } from '../views/vm-view.ts';

export const describe = 'show one VM: state, address, image and the image metadata it runs with';

const usage = `usage: kindling inspect [--json] VM

options:
      --json               one JSON document: {"vm": {...as in ps --json}, "metadata": {entrypoint, cmd, env, ...} or null}
${vmmUsage}`;

function printVm(vm: ReturnType<typeof vmView>, metadata: ReturnType<typeof metadataView> | null): void {
  const rows: [string, unknown][] = [
    ['id', vm.id],
    ['state', vm.stateReason ? `${vm.state} (${vm.stateReason})` : vm.state],
    ['image', vm.bootImage === vm.image ? vm.image : `${vm.image} (boots ${vm.bootImage})`],
    ['address', vm.address ?? '-'],
    ['network', vm.network ?? '-'],
    ['host', vm.host],
    ['driver', vm.pid ? `${vm.driver} (pid ${vm.pid})` : vm.driver],
    ['resources', `${vm.vcpus} vCPUs, ${vm.memoryMib} MiB, disk ${vm.diskSizeBytes} bytes`],
    ['ssh host key', vm.sshHostKeyFingerprint || '-'],
    ['console log', vm.consoleLogPath],
    ['created', vm.created ?? '-'],
    ['started', vm.started ?? '-'],
    ['stopped', vm.stopped ?? '-'],
  ];
  if (Object.keys(vm.labels).length) rows.push(['labels', vm.labels]);
  if (metadata) {
    const shown = Object.entries(metadata).filter(([, value]) => (Array.isArray(value) ? value.length > 0 : typeof value === 'object' ? Object.keys(value).length > 0 : value !== ''));
    rows.push(...shown.map(([key, value]): [string, unknown] => [key, value]));
  } else rows.push(['metadata', '(the image is gone)']);
  for (const [key, value] of rows) process.stdout.write(`${`${key}:`.padEnd(14)} ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('inspect', usage, {
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return usageError('inspect', 'needs one VM id', usage);
  return withService('inspect', VMM, values, async (client) => {
    const { vm } = await unaryCall<GetVmResponse>('vmm', (cb) => client.getVm({ vmId: positionals[0]! }, cb));
    const view = vmView(vm!);
    // The image may have been removed since the VM was made from it: the VM is still worth showing.
    const image = await unaryCall<GetImageResponse>('vmm', (cb) => client.getImage({ image: view.bootImage }, cb)).then(
      (r): Image | undefined => r.image,
      (error: unknown) => {
        if (error instanceof NotFoundError) return undefined;
        throw error;
      },
    );
    const metadata = image ? metadataView(image.metadata) : null;
    if (values.json) printJson(process.stdout, { vm: view, metadata });
    else printVm(view, metadata);
    return 0;
  });
}
