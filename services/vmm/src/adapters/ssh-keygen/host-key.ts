import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostKeyGenerator, SshHostKey } from '../../ports/disk.ts';
import { runCommand } from '../exec/run-command.ts';

/** Fresh ed25519 host keys in OpenSSH format, made by ssh-keygen (what sshd expects byte for byte). */
export class SshKeygenHostKeys implements HostKeyGenerator {
  async generate(comment: string): Promise<SshHostKey> {
    const dir = await mkdtemp(join(tmpdir(), 'kindling-hostkey-'));
    try {
      const keyPath = join(dir, 'key');
      await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyPath]);
      const [privateKey, publicKey] = await Promise.all([
        readFile(keyPath, 'utf8'),
        readFile(`${keyPath}.pub`, 'utf8'),
      ]);
      return { privateKey, publicKey: publicKey.trim() };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
