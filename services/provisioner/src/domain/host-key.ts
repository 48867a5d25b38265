import { createHash } from 'node:crypto';
import { InvalidArgumentError } from './errors.ts';

/** A pinned SSH host public key, as in known_hosts / *.pub: "ssh-ed25519 AAAA... [comment]". */
export interface HostPublicKey {
  algorithm: string;
  blob: Buffer;
  fingerprint: string;
}

export function parseHostPublicKey(line: string): HostPublicKey {
  const [algorithm, base64] = line.trim().split(/\s+/);
  if (!algorithm || !base64 || !/^[A-Za-z0-9+/]+=*$/.test(base64)) {
    throw new InvalidArgumentError(
      `expected host key "${line.slice(0, 60)}" is not an OpenSSH public key line; pass the content of the guest's ssh_host_ed25519_key.pub ("ssh-ed25519 AAAA...")`,
    );
  }
  const blob = Buffer.from(base64, 'base64');
  const declared = readSshString(blob);
  if (declared !== algorithm) {
    throw new InvalidArgumentError(`expected host key says "${algorithm}" but its key data is "${declared ?? 'unreadable'}"`);
  }
  return { algorithm, blob, fingerprint: fingerprintOf(blob) };
}

/** OpenSSH's fingerprint format: SHA256:<unpadded base64 of sha256(blob)>. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Host-key algorithms to offer so the server presents the key type we pinned. */
export function hostKeyAlgorithmsFor(key: HostPublicKey): string[] {
  if (key.algorithm === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [key.algorithm];
}

function readSshString(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length > blob.length - 4) return undefined;
  return blob.subarray(4, 4 + length).toString('latin1');
}
