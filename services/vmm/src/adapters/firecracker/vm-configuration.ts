/**
 * The ordered, named chain of API requests that configures a VM before InstanceStart (like
 * firecracker-go-sdk's handler list): pure, so tests can validate every body against the spec.
 */
import type { VmLaunchSpec } from '../../ports/hypervisor.ts';
import type {
  BootSource,
  Drive,
  Logger,
  MachineConfiguration,
  Metrics,
  MmdsConfig,
  NetworkInterface,
} from './api-client.ts';
import type { FirecrackerConfig } from './config.ts';
import { FirecrackerDriverError } from './errors.ts';

/** Paths as Firecracker sees them (jail-relative under the jailer, host paths without it). */
export interface VmFilePaths {
  readonly kernel: string;
  readonly initrd?: string;
  readonly rootfs: string;
  readonly transferDisk?: string;
  readonly log: string;
  readonly metrics: string;
}

export type ConfigurationRequest =
  | { readonly step: 'logger'; readonly method: 'PUT'; readonly path: '/logger'; readonly body: Logger }
  | { readonly step: 'metrics'; readonly method: 'PUT'; readonly path: '/metrics'; readonly body: Metrics }
  | {
      readonly step: 'machine-config';
      readonly method: 'PUT';
      readonly path: '/machine-config';
      readonly body: MachineConfiguration;
    }
  | {
      readonly step: 'boot-source';
      readonly method: 'PUT';
      readonly path: '/boot-source';
      readonly body: BootSource;
    }
  | { readonly step: 'root-drive' | 'transfer-drive'; readonly method: 'PUT'; readonly path: string; readonly body: Drive }
  | {
      readonly step: 'network-interface';
      readonly method: 'PUT';
      readonly path: string;
      readonly body: NetworkInterface;
    }
  | {
      readonly step: 'mmds-config';
      readonly method: 'PUT';
      readonly path: '/mmds/config';
      readonly body: MmdsConfig;
    }
  | {
      readonly step: 'mmds';
      readonly method: 'PUT';
      readonly path: '/mmds';
      readonly body: Record<string, unknown>;
    };

export const ROOT_DRIVE_ID = 'rootfs';
/** Firecracker attaches the root device first, so the guest names this second drive vdb. */
export const TRANSFER_DRIVE_ID = 'transfer';
export const GUEST_IFACE_ID = 'eth0';
/** Firecracker's vCPU range (MachineConfiguration.vcpu_count). */
export const MAX_VCPUS = 32;
/** A Linux interface name holds at most IFNAMSIZ - 1 = 15 bytes: Firecracker cannot open a longer tap. */
export const MAX_TAP_NAME_BYTES = 15;
/**
 * Firecracker's default limit on an API request body, which also caps the MMDS data store
 * (`--http-api-max-payload-size`, `--mmds-size-limit`): a larger PUT /mmds is refused.
 */
export const MAX_API_PAYLOAD_BYTES = 51_200;
/** NetworkInterface.guest_mac as Firecracker parses it: six colon-separated hex octets. */
const GUEST_MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Driver args first, then the VM spec's (the kernel takes the last value of a repeated parameter). */
export function bootArgs(driverArgs: string, specArgs: string): string {
  const tokens: string[] = [];
  for (const token of `${driverArgs} ${specArgs}`.split(/\s+/))
    if (token !== '' && !tokens.includes(token)) tokens.push(token);
  return tokens.join(' ');
}

export function assertLaunchable(
  spec: VmLaunchSpec,
): asserts spec is VmLaunchSpec & { kernel: { vmlinuxPath: string } } {
  const bad = (message: string) =>
    new FirecrackerDriverError('INVALID_ARGUMENT', `VM ${spec.vmId}: ${message}`, {
      details: { vmId: spec.vmId },
    });
  if (spec.kernel.vmlinuxPath === undefined) {
    throw bad(
      'firecracker boots an uncompressed ELF vmlinux on x86_64, and the kernel has none; register the kernel with its vmlinux (the base-OS build extracts it)',
    );
  }
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > MAX_VCPUS)
    throw bad(`vcpus ${spec.vcpus} is outside firecracker's range 1-${MAX_VCPUS}`);
  if (!Number.isInteger(spec.memoryMib) || spec.memoryMib < 1)
    throw bad(`memoryMib ${spec.memoryMib} must be a positive integer`);
  if (spec.network !== undefined) {
    const { tapName, guestMac } = spec.network;
    const bytes = Buffer.byteLength(tapName);
    if (bytes < 1 || bytes > MAX_TAP_NAME_BYTES || /[\s/:]/.test(tapName))
      throw bad(
        `tap ${JSON.stringify(tapName)} is not a usable interface name (1-${MAX_TAP_NAME_BYTES} bytes, no whitespace, "/" or ":"); give the CNI tap a shorter name`,
      );
    if (!GUEST_MAC.test(guestMac))
      throw bad(`guest MAC ${JSON.stringify(guestMac)} is not six colon-separated hex octets`);
    const metadataBytes =
      spec.guestMetadata === undefined ? 0 : Buffer.byteLength(JSON.stringify(spec.guestMetadata));
    if (metadataBytes > MAX_API_PAYLOAD_BYTES)
      throw bad(
        `guest metadata (guest.json for MMDS) is ${metadataBytes} bytes; Firecracker accepts at most ${MAX_API_PAYLOAD_BYTES} in PUT /mmds: shorten the image's ENV, entrypoint or authorized keys`,
      );
  }
}

export function vmConfigurationRequests(
  spec: VmLaunchSpec,
  config: FirecrackerConfig,
  paths: VmFilePaths,
): ConfigurationRequest[] {
  assertLaunchable(spec);
  const requests: ConfigurationRequest[] = [
    {
      step: 'logger',
      method: 'PUT',
      path: '/logger',
      body: { log_path: paths.log, level: config.logLevel, show_level: true, show_log_origin: false },
    },
    { step: 'metrics', method: 'PUT', path: '/metrics', body: { metrics_path: paths.metrics } },
    {
      step: 'machine-config',
      method: 'PUT',
      path: '/machine-config',
      body: { vcpu_count: spec.vcpus, mem_size_mib: spec.memoryMib, smt: false },
    },
    {
      step: 'boot-source',
      method: 'PUT',
      path: '/boot-source',
      body: {
        kernel_image_path: paths.kernel,
        ...(paths.initrd === undefined ? {} : { initrd_path: paths.initrd }),
        boot_args: bootArgs(config.kernelArgs, spec.kernelArgs),
      },
    },
    {
      step: 'root-drive',
      method: 'PUT',
      path: `/drives/${ROOT_DRIVE_ID}`,
      body: {
        drive_id: ROOT_DRIVE_ID,
        path_on_host: paths.rootfs,
        is_root_device: true,
        is_read_only: false,
        ...(config.rootDriveRateLimiter === undefined ? {} : { rate_limiter: config.rootDriveRateLimiter }),
      },
    },
  ];
  if (paths.transferDisk !== undefined) {
    requests.push({
      step: 'transfer-drive',
      method: 'PUT',
      path: `/drives/${TRANSFER_DRIVE_ID}`,
      body: { drive_id: TRANSFER_DRIVE_ID, path_on_host: paths.transferDisk, is_root_device: false, is_read_only: true },
    });
  }
  if (spec.network !== undefined) {
    // No `mtu`: v1.7.0 rejects unknown fields; the guest takes its MTU from guest.json / MMDS.
    requests.push({
      step: 'network-interface',
      method: 'PUT',
      path: `/network-interfaces/${GUEST_IFACE_ID}`,
      body: {
        iface_id: GUEST_IFACE_ID,
        host_dev_name: spec.network.tapName,
        guest_mac: spec.network.guestMac,
      },
    });
    // MMDS is reachable only through a network interface, so it exists only with one.
    if (spec.guestMetadata !== undefined) {
      requests.push(
        {
          step: 'mmds-config',
          method: 'PUT',
          path: '/mmds/config',
          body: { version: 'V2', network_interfaces: [GUEST_IFACE_ID], ipv4_address: '169.254.169.254' },
        },
        { step: 'mmds', method: 'PUT', path: '/mmds', body: spec.guestMetadata },
      );
    }
  }
  return requests;
}
