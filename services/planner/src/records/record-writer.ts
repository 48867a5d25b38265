/**
 * Keeps a running build's record saved: the build run changes the record in place and announces each
 * change as an event, so the event log's bus is wrapped to save the record with each state or step
 * event (log events change nothing in it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Build } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { BusMessage, EventBus, Logger, Subscription } from '@kindling/runtime';
import type { BuildRecordStore } from './ports.ts';

/** Saves a live record one write at a time; changes made during a write are saved right after it. */
export class RecordWriter {
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly record: Build,
    private readonly store: BuildRecordStore,
    private readonly log: Logger,
  ) {}

  save(): void {
    this.dirty = true;
    this.writing ??= this.writeWhileDirty();
  }

  /** Resolves once the record as it is now is saved (or its save failed, which is logged). */
  async flushed(): Promise<void> {
    this.save();
    await this.writing;
  }

  private async writeWhileDirty(): Promise<void> {
    let failedSince: number | undefined;
    while (this.dirty) {
      this.dirty = false;
      try {
        await this.store.put(this.record);
        if (failedSince !== undefined) this.log.info({ buildId: this.record.id }, 'build record saved again');
        failedSince = undefined;
      } catch (error) {
        // A store that is away (NATS restarting) usually returns: keep the newest record and try
        // again for a while; a planner restarted later fails a build whose record stayed RUNNING.
        failedSince ??= Date.now();
        const waited = Date.now() - failedSince;
        this.log.error({ err: error, buildId: this.record.id, retrying: waited < saveRetryMs }, 'could not save the build record');
        if (waited >= saveRetryMs) break;
        this.dirty = true;
        await sleep(Math.min(5000, 250 + waited / 4));
      }
    }
    this.writing = undefined;
  }
}

/** How long a record save is retried while its store fails. */
const saveRetryMs = 60_000;

/** The bus, with the record saved as each state and step event goes out. */
export class RecordSavingBus implements EventBus {
  constructor(
    private readonly bus: EventBus,
    private readonly writer: RecordWriter,
  ) {}

  get durable(): boolean {
    return this.bus.durable;
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    // the record changed before its event was queued: save it now, not once the bus has acknowledged
    if (!subject.endsWith('.log')) this.writer.save();
    await this.bus.publish(subject, data);
  }

  subscribe(pattern: string, handler: (message: BusMessage) => void): Subscription {
    return this.bus.subscribe(pattern, handler);
  }

  history(pattern: string, signal?: AbortSignal): AsyncIterable<BusMessage> {
    return this.bus.history(pattern, signal);
  }

  async close(): Promise<void> {
    // the bus is the coordinator's, shared by every build: it closes it
  }
}
