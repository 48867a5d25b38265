import { totalmem } from 'node:os';
import { InvalidArgumentError } from './errors.ts';
import type { VmSpec } from './vm.ts';

const MIB = 1024 * 1024;
const MAX_DISK_BYTES = 16 * 1024 ** 4;

// RFC 1123 labels joined by dots, at most 64 characters (the kernel's HOST_NAME_MAX).
const HOSTNAME =
  /^(?=.{1,64}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
// One public key as ssh-keygen prints it: type, base64 blob, optional comment (no options, one line).
const PUBLIC_KEY =
  /^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\r\n]*)?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * What CreateVm refuses in a spec before anything is created. The hostname is written into the
 * kernel command line (`ip=...:<hostname>:eth0:off`), so a space or colon in it would add kernel
 * arguments or shift the ip= fields.
 */
export function checkVmSpec(spec: VmSpec): void {
  if (spec.vcpus > 64) throw new InvalidArgumentError(`vcpus ${spec.vcpus} is out of range 1..64`);
  if (spec.memoryMib < 128)
    throw new InvalidArgumentError(`memory ${spec.memoryMib} MiB is below the 128 MiB a guest needs`);
  // Refused here rather than by the hypervisor at StartVm, after the disk was copied.
  const hostMib = Math.floor(totalmem() / MIB);
  if (spec.memoryMib > hostMib)
    throw new InvalidArgumentError(
      `memory ${spec.memoryMib} MiB is more than this host has (${hostMib} MiB): ask for less`,
    );
  if (spec.diskSizeBytes > MAX_DISK_BYTES || !Number.isSafeInteger(spec.diskSizeBytes))
    throw new InvalidArgumentError(
      `disk size ${spec.diskSizeBytes} bytes is more than the 16 TiB a VM disk can grow to: ask for less, or 0 to keep the image size`,
    );
  if (spec.hostname && !HOSTNAME.test(spec.hostname)) {
    throw new InvalidArgumentError(
      `hostname ${JSON.stringify(spec.hostname)} is not valid: use letters, digits and - in dot-separated labels, at most 64 characters (e.g. build-42)`,
    );
  }
  // Each key becomes a line of /root/.ssh/authorized_keys: a newline in one would add a line of its own.
  spec.authorizedKeys.forEach((key, index) => {
    if (!PUBLIC_KEY.test(key.trim())) {
      throw new InvalidArgumentError(
        `authorized_keys[${index}] ${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key)} is not an SSH public key: pass one key per entry as ssh-keygen prints it ("ssh-ed25519 AAAA... comment")`,
      );
    }
  });
  if (CONTROL.test(spec.extraKernelArgs)) {
    throw new InvalidArgumentError(
      `extra kernel args ${JSON.stringify(spec.extraKernelArgs)} contain a control character (newline, tab, ...): separate arguments with spaces`,
    );
  }
}
