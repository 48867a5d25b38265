/** The vmm's own metric, in the process registry: kindling_vms{state}, counted from the VM records at scrape time. */
import { registerCountsGauge, type Logger } from '@kindling/runtime';
import type { VmRecord, VmState } from '../../domain/vm.ts';

const knownStates: readonly VmState[] = ['CREATED', 'STARTING', 'RUNNING', 'STOPPING', 'STOPPED', 'FAILED'];

export function registerVmsGauge(vms: { listVms(): Promise<VmRecord[]> }, log: Logger): void {
  registerCountsGauge({
    name: 'kindling_vms',
    help: 'VMs of this vmm host by state, from its VM records',
    label: 'state',
    values: knownStates,
    async count() {
      const counts = new Map<string, number>();
      for (const vm of await vms.listVms()) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1);
      return counts;
    },
    onError: (error) => log.warn({ err: error }, 'could not count the VMs for the metrics'),
  });
}
