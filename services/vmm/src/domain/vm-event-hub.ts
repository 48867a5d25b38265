import type { VmEventPublisher, VmStateEvent } from '../ports/vm-events.ts';
import type { VmRecord, VmState } from './vm.ts';

export interface SequenceStore {
  load(): Promise<number>;
  save(sequence: number): Promise<void>;
}

/**
 * Numbers each VM state change (per host, increasing across restarts), publishes it on the
 * event bus, and fans it out to WatchVms streams in this process.
 */
export class VmEventHub {
  private sequence = 0;
  private readonly watchers = new Set<(event: VmStateEvent) => void>();

  constructor(
    private readonly host: string,
    private readonly publisher: VmEventPublisher,
    private readonly sequences: SequenceStore,
    private readonly onPublishError: (error: unknown) => void,
  ) {}

  async init(): Promise<void> {
    this.sequence = await this.sequences.load();
  }

  async emit(record: VmRecord, previous: VmState | undefined): Promise<VmStateEvent> {
    this.sequence += 1;
    const event: VmStateEvent = {
      host: this.host,
      vmId: record.id,
      sequence: this.sequence,
      time: new Date(),
      state: record.state,
      previousState: previous,
      reason: record.reason,
      buildId: record.spec.buildId,
    };
    await this.sequences.save(this.sequence);
    for (const watcher of this.watchers) watcher(event);
    // The bus is for other services; a NATS outage must not fail a VM operation that already happened.
    await this.publisher.publish(event).catch(this.onPublishError);
    return event;
  }

  /** Calls `onEvent` for every later event until `signal` aborts. */
  subscribe(onEvent: (event: VmStateEvent) => void, signal: AbortSignal): void {
    this.watchers.add(onEvent);
    signal.addEventListener('abort', () => this.watchers.delete(onEvent), { once: true });
  }
}
