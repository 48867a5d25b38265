// Opens one ssh2 connection with strict host-key pinning and turns ssh2's failures into
// typed errors: unreachable (retry) vs refused key / wrong host key (stop at once).
import { Client, type ConnectConfig } from 'ssh2';
import { fingerprintOf, hostKeyAlgorithmsFor } from '../../domain/host-key.ts';
import type { SshTarget } from '../../domain/target.ts';
import { CancelledError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError, UnavailableError } from '../../domain/errors.ts';

export interface SshClientOptions {
  /** Per attempt: TCP connect + handshake + auth. */
  handshakeTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

export const DEFAULT_SSH_CLIENT_OPTIONS: SshClientOptions = {
  handshakeTimeoutMs: 20_000,
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
};

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);

/**
 * chacha20-poly1305 first, as OpenSSH's own client orders its ciphers (ssh2 puts AES-GCM first on
 * an AES-NI host). The guest's sshd does the other half of every byte's crypto: without AES in the
 * guest CPU (QEMU TCG, measured: 14.1 vs 10.2 MiB/s through exec `cat`) chacha20 is the faster one,
 * and with it both run at GiB/s, far above what a build moves. A RegExp, so an ssh2 without
 * chacha20 keeps its default order instead of failing.
 */
const CHACHA20 = /^chacha20-poly1305@openssh\.com$/;
const CIPHER_PREFERENCE = { remove: CHACHA20, prepend: CHACHA20 } as never;

export function describeTarget(target: SshTarget): string {
  return `${target.user}@${target.host}:${target.port} (session ${target.sessionId})`;
}

export async function openSshClient(target: SshTarget, options: SshClientOptions, signal?: AbortSignal): Promise<Client> {
  signal?.throwIfAborted();
  const client = new Client();
  let presentedKey: Buffer | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: options.handshakeTimeoutMs,
    keepaliveInterval: options.keepaliveIntervalMs,
    keepaliveCountMax: options.keepaliveCountMax,
    ...(target.privateKey ? { privateKey: target.privateKey } : {}),
    ...(target.agentSocket ? { agent: target.agentSocket } : {}),
    hostVerifier: (key: Buffer) => {
      if (target.acceptAnyHostKey) return true;
      presentedKey = key;
      return target.hostKey !== undefined && key.equals(target.hostKey.blob);
    },
    algorithms: {
      cipher: CIPHER_PREFERENCE,
      ...(target.hostKey ? { serverHostKey: hostKeyAlgorithmsFor(target.hostKey) as never } : {}),
    },
  };
  return new Promise<Client>((resolve, reject) => {
    const onAbort = (): void => {
      client.destroy();
      reject(new CancelledError(`connecting to ${describeTarget(target)} was cancelled`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => signal?.removeEventListener('abort', onAbort);
    client.once('ready', () => {
      settle();
      resolve(client);
    });
    client.once('error', (error: Error & { level?: string; code?: string }) => {
      settle();
      client.destroy();
      reject(classifyConnectError(target, error, presentedKey));
    });
    client.once('close', () => {
      settle();
      reject(new UnavailableError(`SSH connection to ${describeTarget(target)} closed before it was ready`));
    });
    try {
      client.connect(config);
    } catch (error) {
      // ssh2 parses the key before connecting: a malformed or encrypted key is bad input, not a refusal
      settle();
      reject(
        new InvalidArgumentError(
          `target.private_key for ${describeTarget(target)} is not a usable private key (${(error as Error).message}): pass the build's ephemeral key in OpenSSH or PEM form, without a passphrase`,
          { cause: error },
        ),
      );
    }
  });
}

function classifyConnectError(target: SshTarget, error: Error & { level?: string; code?: string }, presentedKey: Buffer | undefined): Error {
  const where = describeTarget(target);
  if (presentedKey && target.hostKey && !presentedKey.equals(target.hostKey.blob)) {
    return new FailedPreconditionError(
      `host key mismatch for ${where}: expected ${target.hostKey.algorithm} ${target.hostKey.fingerprint}, the server presented ${fingerprintOf(presentedKey)}; this is not the guest the vmm created (or its host key was not injected): refusing to connect`,
    );
  }
  if (target.hostKey && /no matching host key format/i.test(error.message)) {
    return new FailedPreconditionError(
      `host key mismatch for ${where}: expected ${target.hostKey.algorithm} ${target.hostKey.fingerprint}, the server has no ${target.hostKey.algorithm} host key; this is not the guest the vmm created (or its host key was not injected): refusing to connect`,
      { cause: error },
    );
  }
  if (error.level === 'client-authentication') {
    return new PermissionDeniedError(
      `${where} refused our SSH key (all authentication methods failed): the guest's authorized_keys does not hold the build's public key`,
      { cause: error },
    );
  }
  if (error.level === 'client-timeout' || (error.code && UNREACHABLE_CODES.has(error.code)) || /before handshake|Connection lost|Timed out/i.test(error.message)) {
    return new UnavailableError(`cannot reach SSH at ${where}: ${error.message}`, { cause: error });
  }
  if (/host key|Handshake failed/i.test(error.message)) {
    return new FailedPreconditionError(`SSH handshake with ${where} failed: ${error.message}`, { cause: error });
  }
  return new UnavailableError(`SSH connection to ${where} failed: ${error.message}`, { cause: error });
}
