/**
 * `kindling vm run|ls|get|stop|rm|images` — VMs and images on a vmm host, over its gRPC API.
 */
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { VmmServiceClient, type ListImagesResponse, type Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, unaryCall } from '@kindling/runtime';
import { describeCallFailure } from '../call-failure.ts';
import { notWholeNumber, parseCommandLine, tlsFilesOf, tlsOptions } from '../command-line.ts';
import { shortDigest } from '../output/format.ts';

export const describe = 'boot, list, stop and remove microVMs on a vmm host; list its images';

const usage = `usage:
  kindling vm run IMAGE [--cpus N] [--memory MiB] [--disk BYTES] [--network NAME] [--ssh-key PUBKEY]... [--name ID]
  kindling vm ls
  kindling vm get ID
  kindling vm stop ID [--timeout SECONDS] [--force]
  kindling vm rm ID
  kindling vm images

run: --cpus 2 and --memory 1024 by default; --disk defaults to the image's size; --network to the
vmm's own --network; --name to an id the vmm picks. stop: --timeout 30 s for the guest to power off,
then it is killed (--force kills it at once).

options: --vmm HOST:PORT (default $KINDLING_VMM_ADDR or 127.0.0.1:50053)
         --tls-ca/--tls-cert/--tls-key PATH   TLS to the vmm
`;


function describeVm(vm: Vm): string {
  const state = VmState[vm.state].replace('VM_STATE_', '');
  return [
    `${vm.id}  ${state}${vm.stateReason ? ` (${vm.stateReason})` : ''}`,
    `  image: ${vm.spec?.image ?? ''}  driver: ${vm.driver}  pid: ${vm.pid || '-'}`,
    `  address: ${vm.network?.guestIp ?? '-'}  mac: ${vm.network?.macAddress ?? '-'}  netns: ${vm.network?.netnsPath ?? '-'}`,
    `  ssh host key: ${vm.sshHostPublicKey}`,
    `  console: ${vm.consoleLogPath}`,
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('vm', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      vmm: { type: 'string', default: process.env.KINDLING_VMM_ADDR ?? '127.0.0.1:50053' },
      cpus: { type: 'string', default: '2' },
      memory: { type: 'string', default: '1024' },
      disk: { type: 'string', default: '0' },
      network: { type: 'string', default: '' },
      'ssh-key': { type: 'string', multiple: true },
      name: { type: 'string', default: '' },
      timeout: { type: 'string', default: '30' },
      force: { type: 'boolean', default: false },
      ...tlsOptions,
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [sub, arg] = positionals;
  if (sub === undefined) {
    process.stderr.write(usage);
    return 2;
  }
  const needs = ({ run: 'IMAGE', get: 'ID', stop: 'ID', rm: 'ID' } as Record<string, string>)[sub];
  if (needs !== undefined && !arg) {
    process.stderr.write(`kindling vm ${sub}: needs ${needs}\n${usage}`);
    return 2;
  }
  const badNumber = notWholeNumber(values, ['cpus', 'memory', 'disk', 'timeout']);
  if (badNumber) {
    process.stderr.write(`kindling vm ${sub}: ${badNumber}\n${usage}`);
    return 2;
  }
  const tls = tlsFilesOf(values);
  let opened: VmmServiceClient | undefined;
  try {
    const client = (opened = createServiceClient(VmmServiceClient, values.vmm, tls));
    switch (sub) {
      case 'run': {
        const { vm } = await unaryCall<{ vm?: Vm }>('vmm', (cb) =>
          client.createVm(
            {
              vmId: values.name,
              start: true,
              spec: {
                image: arg!,
                kernelId: '',
                vcpus: Number(values.cpus),
                memoryMib: Number(values.memory),
                diskSizeBytes: values.disk,
                network: values.network,
                authorizedKeys: values['ssh-key'] ?? [],
                hostname: '',
                extraKernelArgs: '',
                labels: {},
                buildId: '',
                transferDiskBytes: '0',
              },
            },
            cb,
          ),
        );
        if (vm) process.stdout.write(`${describeVm(vm)}\n`);
        return 0;
      }
      case 'ls': {
        const { vms } = await unaryCall<{ vms: Vm[] }>('vmm', (cb) => client.listVms({ state: 0, buildId: '' }, cb));
        for (const vm of vms) process.stdout.write(`${describeVm(vm)}\n`);
        return 0;
      }
      case 'get': {
        const { vm } = await unaryCall<{ vm?: Vm }>('vmm', (cb) => client.getVm({ vmId: arg! }, cb));
        if (vm) process.stdout.write(`${describeVm(vm)}\n`);
        return 0;
      }
      case 'stop': {
        const response = await unaryCall<{ vm?: Vm; graceful: boolean }>('vmm', (cb) =>
          client.stopVm({ vmId: arg!, timeout: { seconds: values.timeout, nanos: 0 }, force: values.force }, cb),
        );
        process.stdout.write(`${arg} stopped${response.graceful ? ' (guest powered off)' : ' (killed)'}\n`);
        return 0;
      }
      case 'rm':
        await unaryCall<unknown>('vmm', (cb) => client.deleteVm({ vmId: arg! }, cb));
        process.stdout.write(`${arg} removed\n`);
        return 0;
      case 'images': {
        const { images } = await unaryCall<ListImagesResponse>('vmm', (cb) => client.listImages({ name: '', includeInternal: false }, cb));
        for (const i of images) {
          const aliases = i.aliases.length ? ` (also ${i.aliases.join(', ')})` : '';
          process.stdout.write(`${i.name}:${i.tag}${aliases}  ${(Number(i.sizeBytes) / 1024 ** 2).toFixed(0)} MiB  ${shortDigest(i.digest)}  ${i.parent ? `from ${i.parent}` : 'base OS'}\n`);
        }
        return 0;
      }
      default:
        process.stderr.write(`kindling vm: unknown subcommand "${sub}"\n${usage}`);
        return 2;
    }
  } catch (error) {
    process.stderr.write(`kindling vm ${sub}: ${describeCallFailure('vmm', values.vmm, '--vmm or KINDLING_VMM_ADDR', error)}\n`);
    return 1;
  } finally {
    opened?.close();
  }
}
