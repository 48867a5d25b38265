/**
 * Ephemeral ed25519 key pairs in OpenSSH format, made with node:crypto. ssh2's generateKeyPairSync
 * strips the public key's leading zero bytes (mscdex/ssh2#1390, #1513), so about 1 key in 256 is
 * one that ssh2 itself then refuses to parse ("Malformed OpenSSH private key"): a build VM lost.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';

export interface SshKeyPair {
  /** "ssh-ed25519 <base64> <comment>", one authorized_keys line. */
  public: string;
  /** "-----BEGIN OPENSSH PRIVATE KEY-----" (openssh-key-v1, unencrypted). */
  private: string;
}

const KEY_TYPE = 'ssh-ed25519';

/** SSH wire strings: a uint32 length, then the bytes. */
function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

export function generateSshKeyPair(comment = ''): SshKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // padded with 1, 2, 3, ... to the cipher's block size (8 for "none")
  const padding = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    Buffer.from([0, 0, 0, 1]),
    sshString(publicBlob),
    sshString(secret),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/gu) ?? [];
  return {
    public: `${KEY_TYPE} ${publicBlob.toString('base64')}${comment ? ` ${comment}` : ''}`,
    private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}
