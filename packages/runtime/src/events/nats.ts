import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, Events, type JetStreamClient, type NatsConnection } from 'nats';
import { UnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { BusMessage, EventBus, Subscription } from './bus.ts';

export const eventsStreamName = 'KINDLING_EVENTS';
export const eventsSubjects = 'kindling.>';

/** What the outbox holds at most while NATS is away; a publish beyond it fails with UNAVAILABLE. */
export const outboxLimitBytes = 64 * 1024 * 1024;

/**
 * The NATS adapter. When the server has JetStream, events are published into the KINDLING_EVENTS
 * stream (created if missing) so history can be replayed per subject; otherwise it is live-only.
 *
 * While NATS is unreachable, events wait in an in-memory outbox, in order, and are published when
 * it returns: a build or a VM does not lose the events of an outage. Each carries a message id (a
 * hash of subject and payload) so JetStream drops the copy of a publish whose ack was lost.
 */
export class NatsEventBus implements EventBus {
  private readonly outbox: { subject: string; data: Uint8Array }[] = [];
  private outboxBytes = 0;
  private draining: Promise<void> | undefined;
  private closing = false;

  private constructor(
    private readonly connection: NatsConnection,
    private readonly jetstream: JetStreamClient | undefined,
    private readonly url: string,
    private readonly logger: Logger,
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
    return new NatsEventBus(connection, jetstream, url, logger);
  }

  /**
   * Resolves once the event is on NATS, or queued in the outbox behind an outage (then it goes out
   * when NATS returns, after those queued before it). Fails with UnavailableError only when the outbox
   * is full or the bus is closed.
   */
  async publish(subject: string, data: Uint8Array): Promise<void> {
    if (this.outbox.length === 0 && !this.closing) {
      try {
        await this.send(subject, data);
        return;
      } catch (error) {
        if (this.connection.isClosed()) throw this.unavailable(subject, error);
        this.logger.warn({ url: this.url, subject, err: error }, 'cannot publish to NATS: events wait in the outbox until it returns');
      }
    }
    if (this.closing) throw this.unavailable(subject, new Error('the event bus is closing'));
    if (this.outboxBytes + data.length > outboxLimitBytes) {
      throw this.unavailable(subject, new Error(`the outbox is full (${this.outbox.length} events, ${this.outboxBytes} bytes waiting for NATS)`));
    }
    this.outbox.push({ subject, data });
    this.outboxBytes += data.length;
    this.draining ??= this.drainOutbox().finally(() => (this.draining = undefined));
  }

  /** Events waiting for NATS. */
  get pending(): number {
    return this.outbox.length;
  }

  private async send(subject: string, data: Uint8Array): Promise<void> {
    if (!this.jetstream) return this.connection.publish(subject, data);
    const msgID = createHash('sha256').update(subject).update('\0').update(data).digest('base64url');
    await this.jetstream.publish(subject, data, { msgID, timeout: 5000 });
  }

  /** Publishes the outbox in order, retrying the head until NATS takes it (or the bus closes). */
  private async drainOutbox(): Promise<void> {
    let attempt = 0;
    while (this.outbox.length > 0 && !this.connection.isClosed()) {
      const head = this.outbox[0]!;
      try {
        await this.send(head.subject, head.data);
      } catch {
        if (this.closing) return;
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt++, 5)));
        continue;
      }
      if (attempt > 0) this.logger.info({ url: this.url, waiting: this.outbox.length - 1 }, 'NATS takes events again: publishing the outbox');
      attempt = 0;
      this.outbox.shift();
      this.outboxBytes -= head.data.length;
    }
  }

  private unavailable(subject: string, error: unknown): UnavailableError {
    return new UnavailableError(`cannot publish ${subject} to NATS at ${this.url}: ${(error as Error).message}`, { cause: error });
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
   * Publishes the outbox and drains what is in flight, but not forever: while NATS is down a drain
   * waits on a reconnect that may never come, and a service stopping on SIGTERM would hang in it.
   * Then the connection is closed; events still in the outbox are lost, and counted in the log.
   */
  async close(drainMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)));
    const drained = (async () => {
      await this.draining;
      this.closing = true;
      if (!this.connection.isClosed()) await this.connection.drain().catch(() => {});
    })();
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    this.closing = true;
    if (this.outbox.length > 0) {
      this.logger.error({ url: this.url, lost: this.outbox.length }, 'NATS did not return before the bus closed: events in the outbox are lost');
    }
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
    if (change.type === Events.Disconnect) logger.warn({ url }, 'NATS connection lost; reconnecting (events wait in the outbox meanwhile)');
    else if (change.type === Events.Reconnect) logger.info({ url }, 'NATS connection restored');
    else if (change.type === Events.Error) logger.warn({ url, err: change.data }, 'NATS connection error');
  }
}
