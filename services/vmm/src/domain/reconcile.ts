import type { VmRecord } from './vm.ts';
import type { VmHost } from './vm-host.ts';

export interface ReconcileReport {
  readonly readopted: string[];
  readonly failed: string[];
  readonly stopped: string[];
  readonly removed: string[];
}

/**
 * After a vmm restart, makes the records true again: a live hypervisor is re-adopted (watched
 * again), a dead one's VM becomes STOPPED if it had been asked to stop and FAILED otherwise, with
 * its process leftovers (sockets, pid files) cleaned, and a VM whose CreateVm never finished is removed.
 */
export async function reconcileVms(host: VmHost): Promise<ReconcileReport> {
  const { records, hypervisor, log } = host.deps;
  const report: ReconcileReport = { readopted: [], failed: [], stopped: [], removed: [] };
  for (const record of await records.list()) {
    try {
      await reconcileOne(host, record as VmRecord & { creating?: boolean }, report);
    } catch (error) {
      log.error({ vmId: record.id, err: error }, 'reconciling VM failed; it keeps its recorded state');
    }
  }
  log.info({ ...report, driver: hypervisor.name }, 'reconciled VM records');
  return report;
}

async function reconcileOne(
  host: VmHost,
  record: VmRecord & { creating?: boolean },
  report: ReconcileReport,
): Promise<void> {
  const { hypervisor } = host.deps;
  if (record.creating) {
    await host.removeEverything(record);
    report.removed.push(record.id);
    return;
  }
  const alive = record.process ? await hypervisor.isAlive(record.process) : false;
  if (alive) {
    if (record.state === 'STARTING') await host.transition(record, 'RUNNING', '');
    host.watchExit(record);
    report.readopted.push(record.id);
    return;
  }
  if (!record.process && !['STARTING', 'RUNNING', 'STOPPING'].includes(record.state)) return;
  await hypervisor.cleanup(record.process, { vmId: record.id, runDir: record.runDir });
  const process = record.process;
  delete record.process;
  if (record.stopRequested || record.state === 'STOPPING') {
    await host.transition(record, 'STOPPED', '');
    report.stopped.push(record.id);
  } else {
    const who = process ? `${process.driver} (pid ${process.pid})` : 'its hypervisor';
    await host.transition(
      record,
      'FAILED',
      `${who} exited while the vmm was not running; see ${record.consoleLogPath}`,
    );
    report.failed.push(record.id);
  }
}
