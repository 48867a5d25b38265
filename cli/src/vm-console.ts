/**
 * A VM's serial console, for `kindling logs` and an attached `kindling run`. The vmm has no console
 * RPC: the log is the file the hypervisor writes on the vmm's host (Vm.console_log_path), read here
 * directly, so it works where the CLI runs on that host. Following ends when the VM stops or is
 * removed (WatchVms), or when the caller's signal fires (Ctrl-C).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { Vm, VmmServiceClient, WatchVmsResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { streamMessages } from '@kindling/runtime';
import { interruptSignal } from './interrupt.ts';

const ENDED: readonly VmState[] = [VmState.VM_STATE_STOPPED, VmState.VM_STATE_FAILED, VmState.VM_STATE_DELETED];
const POLL_MS = 200;

export interface VmEnd {
  readonly state: VmState;
  readonly reason: string;
}

/** Resolves when the VM is stopped, failed or deleted (WatchVms sends the current state first). */
export async function vmEnded(client: VmmServiceClient, vmId: string, signal: AbortSignal): Promise<VmEnd | undefined> {
  const stream = client.watchVms({ vmId });
  for await (const { event } of streamMessages<WatchVmsResponse>('vmm', stream, signal)) {
    if (event && ENDED.includes(event.state)) return { state: event.state, reason: event.reason };
  }
  return undefined;
}

async function openConsole(vm: Vm): Promise<FileHandle | undefined> {
  try {
    return await open(vm.consoleLogPath, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A VM never started has no console yet; any other VM's log lives on the vmm's host.
    if (code === 'ENOENT' && vm.state === VmState.VM_STATE_CREATED) return undefined;
    throw new Error(
      `cannot read the console log of VM ${vm.id} at ${vm.consoleLogPath} (${code ?? (error as Error).message}): ` +
        `the vmm has no console RPC, so kindling reads that file; run this on the vmm's host${vm.host ? ` (${vm.host})` : ''}`,
    );
  }
}

/**
 * Copies the console log to out. Without follow it stops at the end of the file; with follow it
 * keeps reading until ended resolves (then drains what is left) or signal fires. Returns how it stopped.
 */
export async function copyConsole(
  vm: Vm,
  out: NodeJS.WritableStream,
  options: { follow: boolean; ended?: Promise<unknown>; signal?: AbortSignal },
): Promise<'end-of-log' | 'vm-ended' | 'interrupted'> {
  let finished = false;
  void options.ended?.then(
    () => (finished = true),
    () => (finished = true),
  );
  let file = await openConsole(vm);
  const buffer = Buffer.alloc(64 * 1024);
  let position = 0;
  try {
    for (;;) {
      if (options.signal?.aborted) return 'interrupted';
      const wasFinished = finished;
      file ??= await openConsole({ ...vm, state: VmState.VM_STATE_CREATED });
      const { bytesRead } = file ? await file.read(buffer, 0, buffer.length, position) : { bytesRead: 0 };
      if (bytesRead > 0) {
        position += bytesRead;
        // A copy: a queued write may still hold the bytes when the buffer is read into again.
        if (!out.write(Buffer.from(buffer.subarray(0, bytesRead)))) await new Promise((resolve) => out.once('drain', resolve));
        continue;
      }
      if (!options.follow) return 'end-of-log';
      // Read once more after the VM ended, so its last words are not lost.
      if (wasFinished) return 'vm-ended';
      await sleep(POLL_MS, undefined, { signal: options.signal }).catch(() => {});
    }
  } finally {
    await file?.close();
  }
}

/**
 * Follows the console until the VM stops or is removed (end says how) or Ctrl-C (interrupted: the
 * VM runs on). The watch on the VM is cancelled either way.
 */
export async function followConsole(
  client: VmmServiceClient,
  vm: Vm,
  out: NodeJS.WritableStream,
): Promise<{ interrupted: true } | { interrupted: false; end: VmEnd | undefined }> {
  const interrupt = interruptSignal();
  const watching = new AbortController();
  try {
    const ended = vmEnded(client, vm.id, AbortSignal.any([interrupt.signal, watching.signal]));
    ended.catch(() => {});
    const how = await copyConsole(vm, out, { follow: true, ended, signal: interrupt.signal });
    return how === 'interrupted' ? { interrupted: true } : { interrupted: false, end: await ended };
  } finally {
    watching.abort();
    interrupt.dispose();
  }
}
