import { connect, Events, type JetStreamClient, type NatsConnection } from 'nats';
import { UnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { BusMessage, EventBus, Subscription } from './bus.ts';

export const eventsStreamName = 'KINDLING_EVENTS';
export const eventsSubjects = 'kindling.>';

/**
 * The NATS adapter. When the server has JetStream, events are published into the KINDLING_EVENTS
 * stream (created if missing) so history can be replayed per subject; otherwise it is live-only.
 */
export class NatsEventBus implements EventBus {
  private constructor(
    private readonly connection: NatsConnection,
    private readonly jetstream: JetStreamClient | undefined,
    private readonly url: string,
  ) {}

  get durable(): boolean {
    return this.jetstream !== undefined;
  }

  static async connect(servers: string, logger: Logger, maxAgeMs = 7 * 24 * 3600 * 1000): Promise<NatsEventBus> {
    const url = withoutCredentials(servers);
    let connection: NatsConnection;
    try {
      connection = await connect({ servers: servers.split(',').map((server) => server.trim()), name: 'kindling', maxReconnectAttempts: -1 });
    } catch (error) {
      throw new UnavailableError(`cannot connect to NATS at ${url}: ${(error as Error).message}`);
    }
    let jetstream: JetStreamClient | undefined;
    try {
      const manager = await connection.jetstreamManager();
      const config = { name: eventsStreamName, subjects: [eventsSubjects], max_age: maxAgeMs * 1_000_000 };
      try {
        await manager.streams.info(eventsStreamName);
        await manager.streams.update(eventsStreamName, config);
      } catch {
        await manager.streams.add(config);
      }
      jetstream = connection.jetstream();
    } catch (error) {
      logger.warn({ err: error, url }, 'NATS has no JetStream: events are live-only, WatchBuild cannot replay history');
    }
    void logConnectionChanges(connection, url, logger);
    return new NatsEventBus(connection, jetstream, url);
  }

  /** Fails with UnavailableError while NATS is unreachable (the client keeps reconnecting meanwhile). */
  async publish(subject: string, data: Uint8Array): Promise<void> {
    try {
      if (this.jetstream) await this.jetstream.publish(subject, data);
      else this.connection.publish(subject, data);
    } catch (error) {
      throw new UnavailableError(`cannot publish ${subject} to NATS at ${this.url}: ${(error as Error).message}`, { cause: error });
    }
  }

  subscribe(pattern: string, handler: (message: BusMessage) => void): Subscription {
    const subscription = this.connection.subscribe(pattern, {
      callback: (error, message) => {
        if (!error) handler({ subject: message.subject, data: message.data });
      },
    });
    return { unsubscribe: () => subscription.unsubscribe() };
  }

  async *history(pattern: string, signal?: AbortSignal): AsyncIterable<BusMessage> {
    if (!this.jetstream) return;
    const consumer = await this.jetstream.consumers.get(eventsStreamName, { filterSubjects: pattern });
    const info = await consumer.info();
    if (info.num_pending === 0) return;
    const messages = await consumer.consume();
    const stop = (): void => void messages.stop();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const message of messages) {
        yield { subject: message.subject, data: message.data };
        if (message.info.pending === 0) break;
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      await messages.close();
    }
    signal?.throwIfAborted();
  }

  /**
   * Drains what is in flight, but not forever: while NATS is down a drain waits on a reconnect that may
   * never come, and a service stopping on SIGTERM would hang in it. Then the connection is closed.
   */
  async close(drainMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const drained = this.connection.isClosed() ? Promise.resolve() : this.connection.drain().catch(() => {});
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    if (!this.connection.isClosed()) await this.connection.close();
  }
}

/** The server list for logs and errors: a user:password in a nats:// URL must not reach either. */
export function withoutCredentials(servers: string): string {
  return servers.replace(/\/\/[^/@,]*@/g, '//***@');
}

/** An operator sees NATS going away and coming back in the service's log, not only failed publishes. */
async function logConnectionChanges(connection: NatsConnection, url: string, logger: Logger): Promise<void> {
  for await (const change of connection.status()) {
    if (change.type === Events.Disconnect) logger.warn({ url }, 'NATS connection lost; reconnecting (events cannot be published meanwhile)');
    else if (change.type === Events.Reconnect) logger.info({ url }, 'NATS connection restored');
    else if (change.type === Events.Error) logger.warn({ url, err: change.data }, 'NATS connection error');
  }
}
