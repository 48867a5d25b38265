import type { GuestDirectory, GuestFile, SshHostKey } from '../ports/disk.ts';
import type { ImageRecord } from './image.ts';
import type { CniAttachment } from '../ports/vm-network.ts';

/** Files the vmm writes into a VM's root filesystem before its first boot (the guest contract). */
export const GUEST_JSON = '/etc/kindling/guest.json';
export const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
export const AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';
/** The guest's init (systemd in a base OS): it runs the unit that applies guest.json and starts sshd. */
export const GUEST_INIT = '/sbin/init';

/** What must not outlive the VM in an image committed from it: its identity and access (path → mode). */
export const PER_VM_FILE_MODES: Readonly<Record<string, number>> = {
  [GUEST_JSON]: 0o644,
  [HOST_KEY]: 0o600,
  [`${HOST_KEY}.pub`]: 0o644,
  [AUTHORIZED_KEYS]: 0o600,
};
export const PER_VM_FILES = Object.keys(PER_VM_FILE_MODES);

/** Directories the per-VM files live in, made when an image lacks them. */
export const GUEST_DIRECTORIES: readonly GuestDirectory[] = [
  { path: '/etc/kindling', mode: 0o755 },
  { path: '/etc/ssh', mode: 0o755 },
  { path: '/root', mode: 0o700 },
  { path: '/root/.ssh', mode: 0o700 },
];

export interface GuestIdentity {
  readonly vmId: string;
  readonly hostname: string;
  readonly network?: CniAttachment;
  readonly authorizedKeys: string[];
  readonly hostKey: SshHostKey;
  readonly image: ImageRecord;
}

export function guestJson(identity: GuestIdentity): string {
  const { network, image } = identity;
  const document = {
    vmId: identity.vmId,
    hostname: identity.hostname,
    network: guestNetwork(network),
    authorizedKeys: identity.authorizedKeys,
    ...(image.base
      ? {}
      : {
          image: {
            entrypoint: image.metadata.entrypoint,
            cmd: image.metadata.cmd,
            env: image.metadata.env,
            user: image.metadata.user,
            workingDir: image.metadata.workingDir,
            stopSignal: image.metadata.stopSignal || 'SIGTERM',
          },
        }),
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** guest.json's `network`: the CNI attachment as the boot unit applies it (empty without one). */
export function guestNetwork(network: CniAttachment | undefined) {
  return network
    ? {
        address: network.guestCidr,
        gateway: network.gateway ?? '',
        mtu: network.mtu ?? 1500,
        nameservers: network.nameservers,
      }
    : { address: '', gateway: '', mtu: 1500, nameservers: [] as string[] };
}

export function guestFiles(identity: GuestIdentity): { directories: GuestDirectory[]; files: GuestFile[] } {
  return {
    directories: [...GUEST_DIRECTORIES],
    files: [
      perVmFile(GUEST_JSON, guestJson(identity)),
      perVmFile(HOST_KEY, identity.hostKey.privateKey),
      perVmFile(`${HOST_KEY}.pub`, `${identity.hostKey.publicKey}\n`),
      perVmFile(AUTHORIZED_KEYS, identity.authorizedKeys.map((k) => `${k.trim()}\n`).join('')),
    ],
  };
}

export const perVmFile = (path: string, content: string | Buffer): GuestFile => ({
  path,
  content,
  mode: PER_VM_FILE_MODES[path] ?? 0o600,
});

/**
 * Kernel command line: root on the first virtio disk, and the CNI address as `ip=`, which
 * systemd-network-generator turns into networkd config (Debian's cloud kernel has no IP_PNP).
 */
export function kernelArgs(hostname: string, network: CniAttachment | undefined, extra: string): string {
  const args = ['root=/dev/vda', 'rw', 'net.ifnames=0', 'panic=-1'];
  if (network) {
    const [address, prefix] = network.guestCidr.split('/');
    args.push(
      `ip=${address}::${network.gateway ?? ''}:${netmask(Number(prefix ?? 32))}:${hostname}:eth0:off`,
    );
  }
  if (extra.trim()) args.push(extra.trim());
  return args.join(' ');
}

function netmask(prefix: number): string {
  const bits = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(prefix, 32))) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 0xff).join('.');
}
