import { InvalidArgumentError } from './errors.ts';
import { parseHostPublicKey, type HostPublicKey } from './host-key.ts';

/** Where and how to reach one guest over SSH. */
export interface SshTarget {
  /** Connections are pooled per session id (normally the VM id): one multiplexed connection per VM. */
  sessionId: string;
  host: string;
  port: number;
  user: string;
  /** OpenSSH/PEM private key; per-build ephemeral keys are the norm. */
  privateKey?: string;
  /** Use the ssh-agent at this socket (e.g. $SSH_AUTH_SOCK) instead of, or after, the key. */
  agentSocket?: string;
  /** Pinned host key; undefined only when acceptAnyHostKey is set explicitly. */
  hostKey?: HostPublicKey;
  /** Debugging only: skip host key verification. Never the default. */
  acceptAnyHostKey: boolean;
}

export interface SshTargetInput {
  sessionId?: string;
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  agentSocket?: string;
  hostKey?: string;
  acceptAnyHostKey?: boolean;
}

export function parseSshTarget(input: SshTargetInput, allowAcceptAnyHostKey: boolean): SshTarget {
  if (!input.host) throw new InvalidArgumentError('target.host is empty: pass the guest address (e.g. 10.200.0.5)');
  const port = input.port || 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`target.port ${port} is out of range 1-65535`);
  }
  if (!input.privateKey && !input.agentSocket) {
    throw new InvalidArgumentError(
      `target ${input.host}:${port} has neither a private key nor an ssh-agent socket: pass the build's ephemeral private key`,
    );
  }
  const acceptAny = input.acceptAnyHostKey === true;
  if (acceptAny && !allowAcceptAnyHostKey) {
    throw new InvalidArgumentError(
      `target ${input.host}:${port} asks to accept any host key, which this provisioner does not allow; pass the guest's host key, or start the provisioner with --insecure-accept-any-host-key for debugging`,
    );
  }
  if (!input.hostKey && !acceptAny) {
    throw new InvalidArgumentError(
      `target ${input.host}:${port} has no expected host key: pass the guest's ssh_host_ed25519_key.pub written by the vmm`,
    );
  }
  return {
    sessionId: input.sessionId || `${input.host}:${port}:${input.user || 'root'}`,
    host: input.host,
    port,
    user: input.user || 'root',
    ...(input.privateKey ? { privateKey: input.privateKey } : {}),
    ...(input.agentSocket ? { agentSocket: input.agentSocket } : {}),
    ...(input.hostKey ? { hostKey: parseHostPublicKey(input.hostKey) } : {}),
    acceptAnyHostKey: acceptAny,
  };
}
