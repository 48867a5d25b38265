// Runs one RUN step on a guest: resolve USER in the guest, build the quoted wrapper, stream
// output, and on timeout or cancellation kill the step's whole remote process group.
import { randomBytes } from 'node:crypto';
import type { GuestConnection, RemoteExit } from '../ports/guest-connector.ts';
import { CancelledError, DeadlineExceededError } from './errors.ts';
import { stepArgv, stepEnv, stepWorkdir, type ExecOutcome, type ExecOutput, type ExecOutputSink, type ExecStep } from './exec-step.ts';
import { resolveGuestUser, type GuestUser } from './guest-user.ts';
import { buildRemoteCommand, killProcessGroupCommand, processGroupMarker } from './remote-command.ts';

/** Login-shell noise (motd, rc files) before our marker is dropped, up to this much. */
const MARKER_SEARCH_LIMIT = 64 * 1024;
/** After sending the kill, wait this long for the channel to report the death before closing it. */
const KILL_GRACE_MS = 5000;

export interface StepExecutionOptions {
  onOutput: ExecOutputSink;
  signal?: AbortSignal;
}

export async function resolveStepUser(connection: GuestConnection, spec: string | undefined): Promise<GuestUser | undefined> {
  if (!spec) return undefined;
  const [passwd, group] = await Promise.all([connection.readFile('/etc/passwd'), connection.readFile('/etc/group')]);
  return resolveGuestUser(spec, passwd.toString('utf8'), group.toString('utf8'));
}

export async function executeStep(connection: GuestConnection, step: ExecStep, options: StepExecutionOptions): Promise<ExecOutcome> {
  const argv = stepArgv(step);
  const env = stepEnv(step.env);
  const workdir = stepWorkdir(step.workdir);
  if (options.signal?.aborted) throw cancellationError(options.signal);
  const user = await resolveStepUser(connection, step.user);
  if (options.signal?.aborted) throw cancellationError(options.signal); // later aborts reach the listener below
  const nonce = randomBytes(8).toString('hex');
  const command = buildRemoteCommand({ argv, env, workdir, nonce, ...(user ? { user } : {}) });

  const marker = processGroupMarker(nonce);
  let pending: Buffer | undefined = Buffer.alloc(0);
  let processGroup: number | undefined;
  let stopReason: 'timeout' | 'cancel' | undefined;
  const channelAbort = new AbortController();

  const kill = (): void => {
    if (processGroup === undefined) return; // killed as soon as the marker arrives
    connection.run(killProcessGroupCommand(processGroup), { onOutput: () => {} }).catch(() => channelAbort.abort());
  };
  const stop = (reason: 'timeout' | 'cancel'): void => {
    if (stopReason) return;
    stopReason = reason;
    setTimeout(() => channelAbort.abort(), KILL_GRACE_MS).unref();
    kill();
  };
  const onOutput = (output: ExecOutput): void | Promise<void> => {
    if (output.stream === 'stderr' || pending === undefined) return options.onOutput(output);
    pending = Buffer.concat([pending, output.data]);
    const text = pending.toString('latin1');
    const match = marker.exec(text);
    if (!match && pending.length < MARKER_SEARCH_LIMIT) return;
    const rest = match ? pending.subarray(match.index + match[0].length) : pending;
    pending = undefined;
    if (match) processGroup = Number(match[1]);
    if (stopReason) kill();
    if (rest.length) return options.onOutput({ stream: 'stdout', data: rest, at: output.at });
  };

  const onAbort = (): void => stop('cancel');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = step.timeoutMs ? setTimeout(() => stop('timeout'), step.timeoutMs) : undefined;
  let exit: RemoteExit | undefined;
  try {
    exit = await connection.run(command, { onOutput, signal: channelAbort.signal }).catch((error: unknown) => {
      if (stopReason) return undefined; // the channel was closed on purpose after the kill
      throw error;
    });
    if (pending?.length) await options.onOutput({ stream: 'stdout', data: pending, at: new Date() });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (stopReason === 'timeout') return { kind: 'timed_out', timeoutMs: step.timeoutMs ?? 0 };
  if (stopReason === 'cancel' || !exit) throw cancellationError(options.signal);
  return exit;
}

function cancellationError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof DeadlineExceededError || (reason instanceof Error && reason.name === 'TimeoutError')) {
    return new DeadlineExceededError('the step ran past the call deadline; its remote process group was killed');
  }
  return new CancelledError('the step was cancelled; its remote process group was killed');
}
