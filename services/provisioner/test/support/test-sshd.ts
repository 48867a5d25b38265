// A real OpenSSH server for tests: Debian's sshd on 127.0.0.1 with test-owned host and
// client keys, in a temp dir that stop() removes. Reusable by any service's tests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, stopChild, waitForPort } from '@kindling/runtime/testing';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  host: '127.0.0.1';
  port: number;
  user: 'root';
  /** OpenSSH private key (ed25519) authorized for root on this server. */
  clientPrivateKey: string;
  clientPublicKey: string;
  /** The server's host public key line, "ssh-ed25519 AAAA...". */
  hostPublicKey: string;
  dir: string;
  stop(): Promise<void>;
}

export interface TestSshdOptions {
  /** Listen on this port (e.g. one reserved earlier with freePort()); default a free one. */
  port?: number;
  /** Wait this long before starting sshd (the port stays closed meanwhile). */
  startDelayMs?: number;
}

/** Why sshd tests cannot run here, or undefined when they can. */
export async function sshdUnavailableReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (sshd, setpriv and test users)';
  try {
    await access(SSHD);
  } catch {
    return `needs ${SSHD} (apt-get install openssh-server)`;
  }
  return undefined;
}

export async function generateEd25519KeyPair(dir: string, name: string): Promise<{ privateKey: string; publicKey: string }> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  const [privateKey, publicKey] = await Promise.all([readFile(path, 'utf8'), readFile(`${path}.pub`, 'utf8')]);
  return { privateKey, publicKey: publicKey.trim() };
}

export async function startTestSshd(options: TestSshdOptions = {}): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-sshd-'));
  let child: ChildProcess | undefined;
  let delayTimer: NodeJS.Timeout | undefined;
  const stop = async (): Promise<void> => {
    if (delayTimer) clearTimeout(delayTimer);
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = await generateEd25519KeyPair(dir, 'host_ed25519_key');
    const client = await generateEd25519KeyPair(dir, 'client_ed25519_key');
    await writeFile(join(dir, 'authorized_keys'), `${client.publicKey}\n`, { mode: 0o600 });
    const port = options.port ?? (await freePort());
    const config = [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_ed25519_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PidFile none',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // the temp dir lives under world-writable /tmp, which StrictModes rejects
      'StrictModes no',
      'UseDNS no',
      'MaxSessions 64',
      'MaxStartups 100:30:200',
      'LogLevel ERROR',
      'Subsystem sftp internal-sftp',
    ].join('\n');
    const configPath = join(dir, 'sshd_config');
    await writeFile(configPath, `${config}\n`, { mode: 0o600 });
    await run(SSHD, ['-t', '-f', configPath]);
    let stderr = '';
    const launch = (): ChildProcess => {
      const sshd = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      sshd.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < 16_384) stderr += chunk.toString(); // enough to say why it did not start
        if (process.env.KINDLING_TEST_SSHD_LOG) process.stderr.write(`[test-sshd] ${chunk.toString()}`);
      });
      return sshd;
    };
    if (options.startDelayMs) {
      delayTimer = setTimeout(() => (child = launch()), options.startDelayMs);
    } else {
      child = launch();
      await waitForPort(port, { child, timeoutMs: 5000, what: 'test sshd', output: () => stderr });
    }
    return {
      host: '127.0.0.1',
      port,
      user: 'root',
      clientPrivateKey: client.privateKey,
      clientPublicKey: client.publicKey,
      hostPublicKey: hostKey.publicKey.split(' ').slice(0, 2).join(' '),
      dir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
