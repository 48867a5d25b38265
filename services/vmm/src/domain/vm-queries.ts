import type { VmStateEvent } from '../ports/vm-events.ts';
import type { VmRecord } from './vm.ts';
import type { VmHost } from './vm-host.ts';

/** A VM as returned to callers: the record plus what was measured just now. */
export interface VmView extends VmRecord {
  /** CNI CHECK result from GetVm: "" when healthy or not checked. */
  readonly networkProblem: string;
}

/** The read side of the VM lifecycle: GetVm (with CNI CHECK), ListVms, WatchVms. */
export class VmQueries {
  constructor(private readonly host: VmHost) {}

  private get deps() {
    return this.host.deps;
  }

  async getVm(id: string, signal?: AbortSignal): Promise<VmView> {
    const record = await this.host.mustGet(id);
    let networkProblem = '';
    if (record.network) {
      try {
        await (await this.deps.networks(record.network.networkName)).check(record.id, signal);
      } catch (error) {
        networkProblem = (error as Error).message;
      }
    }
    return { ...record, networkProblem };
  }

  async listVms(): Promise<VmRecord[]> {
    return this.deps.records.list();
  }

  /** Streams state events (after the current state of every VM, so a watcher starts complete) until signal aborts. */
  async watchVms(
    signal: AbortSignal,
    send: (event: VmStateEvent) => Promise<void> | void,
    vmId = '',
  ): Promise<void> {
    const queue: VmStateEvent[] = [];
    let wake: (() => void) | undefined;
    signal.addEventListener('abort', () => wake?.(), { once: true });
    this.deps.events.subscribe((event) => {
      if (vmId && event.vmId !== vmId) return;
      queue.push(event);
      wake?.();
    }, signal);
    for (const record of await this.deps.records.list()) {
      if (vmId && record.id !== vmId) continue;
      await send({
        host: this.deps.host,
        vmId: record.id,
        sequence: 0,
        time: new Date(record.updatedAt),
        state: record.state,
        previousState: undefined,
        reason: record.reason,
        buildId: record.spec.buildId,
      });
    }
    while (!signal.aborted) {
      const event = queue.shift();
      if (event) {
        await send(event);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (signal.aborted) resolve();
      });
      wake = undefined;
    }
  }
}
