import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined if gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') return undefined; // exited, not yet reaped
  return fields[19];
}

/** True when pid runs and is the same process we recorded (pid numbers are reused). */
export async function isSameProcess(pid: number, startTime: string | undefined): Promise<boolean> {
  const current = await processStartTime(pid);
  return current !== undefined && (startTime === undefined || current === startTime);
}

export async function waitForProcessExit(
  pid: number,
  startTime: string | undefined,
  signal?: AbortSignal,
  pollMs = 200,
): Promise<void> {
  // Daemonized and re-adopted VMMs are not our children, so there is no exit event to wait on.
  while (await isSameProcess(pid, startTime)) {
    signal?.throwIfAborted();
    await sleep(pollMs, undefined, signal ? { signal } : {});
  }
}

export async function waitForFile(path: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text?.trim()) return text;
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await sleep(20);
  }
}
