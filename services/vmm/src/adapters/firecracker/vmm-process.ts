/**
 * The Firecracker (or jailer) process as the host sees it: start it detached with the serial
 * console captured, recognise it by pid and command line after a vmm restart, wait for its API
 * socket and for its exit.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirecrackerDriverError } from './errors.ts';

export interface StartedProcess {
  readonly pid: number;
  /** Set once the process we spawned exited (a daemonizing jailer exits early on purpose). */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/**
 * Spawns with stdout/stderr (Firecracker's serial console) appended to consoleLogPath. `detached`
 * gives it its own session so it survives a vmm restart; a daemonizing jailer calls setsid() itself,
 * which fails for a session leader, so it is started attached.
 */
export function startDetached(
  command: string,
  args: readonly string[],
  consoleLogPath: string,
  options: { detached: boolean },
): Promise<StartedProcess> {
  const out = openSync(consoleLogPath, 'a', 0o640);
  return new Promise((resolve, reject) => {
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const child = spawn(command, args, { detached: options.detached, stdio: ['ignore', out, out], env: {} });
    child.once('error', (cause) => {
      closeSync(out);
      reject(
        new FirecrackerDriverError('FAILED_PRECONDITION', `cannot start ${command}: ${cause.message}`, {
          cause,
          details: { command },
        }),
      );
    });
    child.once('spawn', () => {
      closeSync(out);
      child.unref();
      resolve({ pid: child.pid ?? -1, exit: () => exit });
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
    });
  });
}

/**
 * Whether one command-line argument carries a marker: the exec file name as a path's last
 * component (`/firecracker`, `--exec-file /usr/local/bin/firecracker`), or the VM id as a whole
 * token (`--id vm-1`, `--id=vm-1`). Whole tokens, so VM "build-1" never matches "build-10".
 */
function argumentCarries(arg: string, marker: string): boolean {
  return arg === marker || basename(arg) === marker || arg === `--id=${marker}`;
}

/** Alive and still the process we started: not a zombie, and every marker is one of its arguments. */
export async function isProcessAlive(pid: number, markers: readonly string[]): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return markers.every((m) => args.some((arg) => argumentCarries(arg, m)));
  } catch {
    return false;
  }
}

/** Polls until the process is gone; resolves true if it went within timeoutMs (undefined: no limit). */
export async function waitForProcessExit(
  pid: number,
  markers: readonly string[],
  timeoutMs?: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  while (await isProcessAlive(pid, markers)) {
    if (Date.now() >= deadline) return false;
    if (signal?.aborted)
      throw new FirecrackerDriverError('CANCELLED', `stopped waiting for process ${pid} to exit: cancelled`);
    await sleep(100);
  }
  return true;
}

export function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Whether something accepts connections on the Unix socket at path. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface SocketWait {
  readonly socketPath: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Returns a reason when waiting is pointless (the process died). */
  readonly gaveUp?: () => Promise<string | undefined>;
  /** What to say the socket belongs to, e.g. "jailer --id vm-1". */
  readonly owner: string;
}

export async function waitForSocket(wait: SocketWait): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  for (;;) {
    if (wait.signal?.aborted)
      throw new FirecrackerDriverError(
        'CANCELLED',
        `cancelled while waiting for ${wait.owner} to open ${wait.socketPath}`,
      );
    if (await socketAnswers(wait.socketPath)) return;
    const reason = await wait.gaveUp?.();
    if (reason !== undefined) {
      throw new FirecrackerDriverError(
        'UNAVAILABLE',
        `${wait.owner} never opened its API socket ${wait.socketPath}: ${reason}`,
        {
          details: { socketPath: wait.socketPath },
        },
      );
    }
    if (Date.now() >= deadline) {
      throw new FirecrackerDriverError(
        'DEADLINE_EXCEEDED',
        `${wait.owner} did not open its API socket ${wait.socketPath} within ${wait.timeoutMs} ms; check the console log and the firecracker/jailer binaries`,
        { details: { socketPath: wait.socketPath, timeoutMs: wait.timeoutMs } },
      );
    }
    await sleep(50);
  }
}
