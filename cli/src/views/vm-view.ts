/** A VM as `kindling ps --json` and `kindling inspect --json` show it: stable field names, plain values. */
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Vm } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { isoOrNull } from '../output/format.ts';
import { RUN_SOURCE_LABEL } from '../run-image.ts';

/** VM_STATE_RUNNING → "running". */
export const vmStateName = (state: VmState): string => (VmState[state] ?? 'VM_STATE_UNSPECIFIED').replace('VM_STATE_', '').toLowerCase();

/** States in which the hypervisor runs (what `kindling ps` lists without -a). */
export const LIVE_VM_STATES: readonly VmState[] = [VmState.VM_STATE_STARTING, VmState.VM_STATE_RUNNING, VmState.VM_STATE_STOPPING];

export function vmView(vm: Vm) {
  const spec = vm.spec;
  return {
    id: vm.id,
    host: vm.host,
    // A VM started by `kindling run --env/ARGS` boots a per-run copy of the image; this is the one asked for.
    image: spec?.labels[RUN_SOURCE_LABEL] ?? spec?.image ?? '',
    bootImage: spec?.image ?? '',
    state: vmStateName(vm.state),
    stateReason: vm.stateReason,
    driver: vm.driver,
    pid: vm.pid || null,
    address: vm.network?.guestIp || null,
    network: vm.network?.network || null,
    macAddress: vm.network?.macAddress || null,
    vcpus: spec?.vcpus ?? 0,
    memoryMib: spec?.memoryMib ?? 0,
    diskSizeBytes: Number(vm.diskSizeBytes),
    labels: spec?.labels ?? {},
    buildId: spec?.buildId || null,
    sshHostKeyFingerprint: vm.sshHostKeyFingerprint,
    consoleLogPath: vm.consoleLogPath,
    created: isoOrNull(vm.created),
    started: isoOrNull(vm.started),
    stopped: isoOrNull(vm.stopped),
  };
}
