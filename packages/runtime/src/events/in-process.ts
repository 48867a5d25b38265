import { subjectMatches, type BusMessage, type EventBus, type Subscription } from './bus.ts';

/**
 * An in-memory bus for the all-in-one mode and for tests that don't need NATS. History is kept up to
 * maxMessages (oldest dropped first).
 */
export class InProcessEventBus implements EventBus {
  readonly durable = false;
  private readonly stored: BusMessage[] = [];
  private readonly handlers = new Set<{ pattern: string; handler: (m: BusMessage) => void }>();

  constructor(private readonly maxMessages = 100_000) {}

  async publish(subject: string, data: Uint8Array): Promise<void> {
    const message = { subject, data };
    this.stored.push(message);
    if (this.stored.length > this.maxMessages) this.stored.shift();
    for (const { pattern, handler } of [...this.handlers]) if (subjectMatches(pattern, subject)) handler(message);
  }

  subscribe(pattern: string, handler: (message: BusMessage) => void): Subscription {
    const entry = { pattern, handler };
    this.handlers.add(entry);
    return { unsubscribe: () => this.handlers.delete(entry) };
  }

  async *history(pattern: string, signal?: AbortSignal): AsyncIterable<BusMessage> {
    for (const message of this.stored.slice()) {
      signal?.throwIfAborted();
      if (subjectMatches(pattern, message.subject)) yield message;
    }
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
