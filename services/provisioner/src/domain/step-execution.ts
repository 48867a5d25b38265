// Runs one RUN step on a guest: resolve USER in the guest, build the quoted wrapper, stream
// output, and on timeout or cancellation kill the step's whole remote process group.
import { randomBytes } from 'node:crypto';
import type { GuestConnection, RemoteExit } from '../ports/guest-connector.ts';
import { CancelledError, DeadlineExceededError } from './errors.ts';
import { stepArgv, stepEnv, stepWorkdir, type ExecOutcome, type ExecOutput, type ExecOutputSink, type ExecStep } from './exec-step.ts';
import { readGuestAccounts } from './guest-accounts.ts';
import { resolveGuestUser, type GuestUser } from './guest-user.ts';
import { buildRemoteCommand, killProcessGroupCommand, processGroupMarker, SCRIPT_FROM_STDIN } from './remote-command.ts';

/** Login-shell noise (motd, rc files) before our marker is dropped, up to this much. */
const MARKER_SEARCH_LIMIT = 64 * 1024;
/** After sending the kill, wait this long for the channel to report the death before closing it. */
const KILL_GRACE_MS = 5000;
/** After the step's process exited, how long its output may stay open before leftovers are killed. */
const LEFTOVER_GRACE_MS = 1000;

export interface StepExecutionOptions {
  onOutput: ExecOutputSink;
  signal?: AbortSignal;
}

export async function resolveStepUser(connection: GuestConnection, spec: string | undefined): Promise<GuestUser | undefined> {
  if (!spec) return undefined;
  const { passwd, group } = await readGuestAccounts(connection);
  return resolveGuestUser(spec, passwd, group);
}

export async function executeStep(connection: GuestConnection, step: ExecStep, options: StepExecutionOptions): Promise<ExecOutcome> {
  const argv = stepArgv(step);
  const env = stepEnv(step.env);
  const workdir = stepWorkdir(step.workdir);
  if (options.signal?.aborted) throw cancellationError(options.signal);
  const user = await resolveStepUser(connection, step.user);
  if (options.signal?.aborted) throw cancellationError(options.signal); // later aborts reach the listener below
  const nonce = randomBytes(8).toString('hex');
  const script = Buffer.from(buildRemoteCommand({ argv, env, workdir, nonce, ...(user ? { user } : {}) }));

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
  // output still flowing (or held back by a slow client) after the exit is never cut off
  let lastOutputAt = 0;
  let delivering = 0;
  const deliver = (output: ExecOutput): void | Promise<void> => {
    lastOutputAt = Date.now();
    const wait = options.onOutput(output);
    if (!wait) return;
    delivering++;
    return wait.finally(() => delivering--);
  };
  const onOutput = (output: ExecOutput): void | Promise<void> => {
    if (output.stream === 'stderr' || pending === undefined) return deliver(output);
    pending = Buffer.concat([pending, output.data]);
    const text = pending.toString('latin1');
    const match = marker.exec(text);
    if (!match && pending.length < MARKER_SEARCH_LIMIT) return;
    const rest = match ? pending.subarray(match.index + match[0].length) : pending;
    pending = undefined;
    if (match) processGroup = Number(match[1]);
    if (stopReason) kill();
    if (rest.length) return deliver({ stream: 'stdout', data: rest, at: output.at });
  };

  let reported: RemoteExit | undefined;
  let leftoverTimer: NodeJS.Timeout | undefined;
  let closeTimer: NodeJS.Timeout | undefined;
  const onExit = (remote: RemoteExit): void => {
    reported = remote;
    if (stopReason) return;
    // Docker ends a RUN when its process exits and kills what it left running. Here a leftover that
    // holds stdout (`RUN daemon &`) keeps the channel open: if it is still open a moment after the
    // exit, kill the group, then close the channel (one that left the group, setsid, is not reached).
    // Not done for every step: one more SSH session per RUN doubles a trivial step's cost.
    const closeWhenQuiet = (): void => {
      closeTimer = setTimeout(() => (delivering > 0 || Date.now() - lastOutputAt < KILL_GRACE_MS ? closeWhenQuiet() : channelAbort.abort()), KILL_GRACE_MS);
    };
    leftoverTimer = setTimeout(() => {
      if (processGroup !== undefined) connection.run(killProcessGroupCommand(processGroup), { onOutput: () => {} }).catch(() => {});
      closeWhenQuiet();
    }, LEFTOVER_GRACE_MS);
  };

  const onAbort = (): void => stop('cancel');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  // a step that exited in time is not timed out while its leftovers still hold the channel
  const timer = step.timeoutMs ? setTimeout(() => {
        if (!reported) stop('timeout');
      }, step.timeoutMs) : undefined;
  let exit: RemoteExit | undefined;
  try {
    const stdin = (async function* () {
      yield script;
    })();
    exit = await connection.run(SCRIPT_FROM_STDIN, { onOutput, onExit, stdin, signal: channelAbort.signal }).catch((error: unknown) => {
      if (stopReason) return undefined; // the channel was closed on purpose after the kill
      if (reported) return reported; // closed on purpose: an escaped leftover held it open past the grace
      throw error;
    });
    if (pending?.length) await options.onOutput({ stream: 'stdout', data: pending, at: new Date() });
  } finally {
    clearTimeout(timer);
    clearTimeout(leftoverTimer);
    clearTimeout(closeTimer);
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
