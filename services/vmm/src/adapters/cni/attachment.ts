import { FailedPreconditionError } from '../../domain/errors.ts';
import type { CniAttachment } from '../../ports/vm-network.ts';
import type { CniResult } from './result.ts';

/** The conflist's chain gives a VM nothing to boot with: the operator fixes the conflist (FAILED_PRECONDITION, not INTERNAL). */
export class CniAttachmentError extends FailedPreconditionError {
  override name = 'CniAttachmentError';
}

const prefixToNetmask = (prefix: number): string =>
  [0, 1, 2, 3]
    .map((i) => (prefix >= (i + 1) * 8 ? 255 : prefix <= i * 8 ? 0 : (0xff << (8 - (prefix - i * 8))) & 0xff))
    .join('.');

export interface LinkFacts {
  readonly mac?: string;
  readonly mtu?: number;
}

/**
 * Reads what the VM needs from the final result of a chain ending in a tap plugin. tc-redirect-tap and
 * kindling-tap add the tap (sandbox = netns) and a pseudo-interface for the VM (sandbox = the container
 * id, name = the tap, mac = the veth's, which the guest NIC must use) that the VM's IPs point at.
 */
export function attachmentFromResult(
  result: CniResult,
  ids: { vmId: string; networkName: string; netnsPath: string; ifName: string },
  veth: LinkFacts = {},
): CniAttachment {
  const vmIndex = result.interfaces.findIndex((i) => i.sandbox === ids.vmId);
  const vethIndex = result.interfaces.findIndex(
    (i) => i.name === ids.ifName && i.sandbox !== undefined && i.sandbox !== ids.vmId,
  );
  const vmIface = result.interfaces[vmIndex];
  const tapName =
    vmIface?.name ??
    result.interfaces.find((i) => i.sandbox === ids.netnsPath && i.name !== ids.ifName)?.name;
  if (!tapName)
    throw new CniAttachmentError(
      `network "${ids.networkName}" gave VM ${ids.vmId} no tap device: end its conflist with a tc-redirect-tap (or kindling-tap) plugin`,
    );
  const v4 = (a: string): boolean => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(a);
  const ip =
    result.ips.find((i) => i.interface === vmIndex && v4(i.address)) ??
    result.ips.find((i) => i.interface === vethIndex && v4(i.address)) ??
    result.ips.find((i) => v4(i.address));
  if (!ip) throw new CniAttachmentError(`network "${ids.networkName}" gave VM ${ids.vmId} no IPv4 address`);
  const [guestIp, prefix] = ip.address.split('/') as [string, string];
  const mac = vmIface?.mac ?? result.interfaces[vethIndex]?.mac ?? veth.mac;
  if (!mac)
    throw new CniAttachmentError(
      `network "${ids.networkName}" reported no MAC for ${ids.ifName} of VM ${ids.vmId}`,
    );
  const gateway = ip.gateway ?? result.routes.find((r) => r.dst === '0.0.0.0/0')?.gw;
  const mtu = result.interfaces[vethIndex]?.mtu ?? veth.mtu;
  return {
    vmId: ids.vmId,
    networkName: ids.networkName,
    netnsPath: ids.netnsPath,
    ifName: ids.ifName,
    tapName,
    guestMac: mac,
    guestCidr: ip.address,
    guestIp,
    prefixLength: Number(prefix),
    netmask: prefixToNetmask(Number(prefix)),
    ...(gateway ? { gateway } : {}),
    ...(mtu ? { mtu } : {}),
    nameservers: result.dns.nameservers ?? [],
  };
}
