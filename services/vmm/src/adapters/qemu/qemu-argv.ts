import type { VmLaunchSpec } from '../../ports/hypervisor.ts';
import type { Acceleration } from './acceleration.ts';

/**
 * The microvm command line (docs/vm-host.md, "Booting it by hand"): virtio-mmio block and net devices, serial console
 * to a file, QMP on a Unix socket, daemonized with a pid file. Appends console=ttyS0 to the kernel
 * arguments unless the caller chose a console, and under TCG tsc_early_khz= (see hostTscKhz).
 */
export function qemuArgv(
  spec: VmLaunchSpec,
  options: { accel: Acceleration; qmpSocket: string; pidFile: string; binary: string; tscKhz?: number },
): string[] {
  const kernel = spec.kernel.bzImagePath ?? spec.kernel.vmlinuxPath;
  if (!kernel) throw new Error(`VM ${spec.vmId}: the kernel has neither a bzImage nor a vmlinux to boot`);
  let append = /\bconsole=/.test(spec.kernelArgs)
    ? spec.kernelArgs
    : `console=ttyS0 ${spec.kernelArgs}`.trim();
  if (options.accel === 'tcg' && options.tscKhz && !/\btsc_early_khz=/.test(append))
    append += ` tsc_early_khz=${options.tscKhz}`;
  const accel =
    options.accel === 'kvm'
      ? ['-accel', 'kvm', '-cpu', 'host']
      : ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
  const argv = [
    options.binary,
    '-name',
    `kindling-${spec.vmId}`,
    '-M',
    'microvm',
    ...accel,
    '-smp',
    String(spec.vcpus),
    '-m',
    String(spec.memoryMib),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    kernel,
    ...(spec.kernel.initrdPath ? ['-initrd', spec.kernel.initrdPath] : []),
    '-append',
    append,
    '-drive',
    `id=root,file=${escapeOption(spec.rootfsPath)},format=raw,if=none`,
    '-device',
    'virtio-blk-device,drive=root',
  ];
  if (spec.transferDiskPath) {
    // after the root disk, so the guest names it vdb; read-only, the host writes it while the guest runs
    argv.push('-drive', `id=transfer,file=${escapeOption(spec.transferDiskPath)},format=raw,if=none,readonly=on`, '-device', 'virtio-blk-device,drive=transfer');
  }
  if (spec.network) {
    argv.push(
      '-netdev',
      `tap,id=n0,ifname=${spec.network.tapName},script=no,downscript=no`,
      '-device',
      `virtio-net-device,netdev=n0,mac=${spec.network.guestMac}`,
    );
  }
  argv.push(
    '-serial',
    `file:${spec.consoleLogPath}`,
    '-qmp',
    `unix:${options.qmpSocket},server=on,wait=off`,
    '-pidfile',
    options.pidFile,
    '-daemonize',
  );
  return argv;
}

/** QEMU option values escape commas by doubling them. */
const escapeOption = (value: string): string => value.replaceAll(',', ',,');
