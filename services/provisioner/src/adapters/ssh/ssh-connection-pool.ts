import type { SshTarget } from '../../domain/target.ts';
import type { GuestConnection, GuestConnector } from '../../ports/guest-connector.ts';
import { DEFAULT_SSH_CLIENT_OPTIONS, type SshClientOptions } from './ssh-client-factory.ts';
import { SshGuestConnection } from './ssh-guest-connection.ts';

/** One multiplexed SSH connection per VM id, reused by every step of the build. */
export class SshConnectionPool implements GuestConnector {
  private readonly connections = new Map<string, SshGuestConnection>();

  constructor(private readonly options: SshClientOptions = DEFAULT_SSH_CLIENT_OPTIONS) {}

  async connect(target: SshTarget, signal?: AbortSignal): Promise<GuestConnection> {
    let connection = this.connections.get(target.sessionId);
    if (connection && !sameEndpoint(connection.target, target)) {
      // the VM id was reused for another guest (or new credentials): never reuse the old link
      await this.close(target.sessionId);
      connection = undefined;
    }
    if (!connection) {
      connection = new SshGuestConnection(target, this.options);
      this.connections.set(target.sessionId, connection);
    }
    try {
      await connection.open(signal);
    } catch (error) {
      if (this.connections.get(target.sessionId) === connection) this.connections.delete(target.sessionId);
      await connection.close();
      throw error;
    }
    return connection;
  }

  async close(sessionId: string): Promise<boolean> {
    const connection = this.connections.get(sessionId);
    this.connections.delete(sessionId);
    await connection?.close();
    return connection !== undefined;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.connections.keys()].map((sessionId) => this.close(sessionId)));
    return;
  }
}

function sameEndpoint(a: SshTarget, b: SshTarget): boolean {
  return (
    a.host === b.host &&
    a.port === b.port &&
    a.user === b.user &&
    a.privateKey === b.privateKey &&
    a.agentSocket === b.agentSocket &&
    a.acceptAnyHostKey === b.acceptAnyHostKey &&
    (a.hostKey?.blob.equals(b.hostKey?.blob ?? Buffer.alloc(0)) ?? b.hostKey === undefined)
  );
}
