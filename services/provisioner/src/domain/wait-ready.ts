// Retries SSH while the guest boots: unreachable → back off and try again until the
// deadline; refused key or wrong host key → stop at once (waiting cannot fix those).
import type { ConnectAttempt, GuestConnector } from '../ports/guest-connector.ts';
import { DeadlineExceededError, UnavailableError } from './errors.ts';
import type { SshTarget } from './target.ts';

export interface WaitReadyOptions {
  timeoutMs: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  onAttempt?(attempt: ConnectAttempt): void;
  signal?: AbortSignal;
}

export interface WaitReadyResult {
  attempts: number;
  elapsedMs: number;
  serverVersion?: string;
}

export async function waitReady(connector: GuestConnector, target: SshTarget, options: WaitReadyOptions): Promise<WaitReadyResult> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let delay = options.initialDelayMs ?? 200;
  const maxDelay = options.maxDelayMs ?? 2000;
  let lastFailure: Error | undefined; // the last answer that was not our own deadline cutting an attempt
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const attemptSignal = AbortSignal.any([AbortSignal.timeout(Math.max(1, deadline - Date.now())), ...(options.signal ? [options.signal] : [])]);
    try {
      const connection = await connector.connect(target, attemptSignal);
      options.onAttempt?.({ attempt, at: new Date(), retryable: false });
      const serverVersion = connection.serverVersion;
      return { attempts: attempt, elapsedMs: Date.now() - started, ...(serverVersion ? { serverVersion } : {}) };
    } catch (error) {
      options.signal?.throwIfAborted();
      const cutByDeadline = attemptSignal.aborted && !options.signal?.aborted;
      if (!cutByDeadline) lastFailure = error as Error;
      const retryable = error instanceof UnavailableError || cutByDeadline;
      const remaining = deadline - Date.now();
      const nextDelayMs = Math.min(delay, Math.max(0, remaining));
      options.onAttempt?.({ attempt, at: new Date(), error: error as Error, retryable, ...(retryable && remaining > 0 ? { nextDelayMs } : {}) });
      if (!retryable) throw error;
      if (remaining <= 0) {
        const cut = cutByDeadline ? `attempt ${attempt} was still connecting (TCP, SSH handshake or authentication) when time ran out` : '';
        const last = lastFailure ? `last error: ${lastFailure.message}` : '';
        throw new DeadlineExceededError(
          `SSH on ${target.host}:${target.port} (session ${target.sessionId}) was not ready within ${options.timeoutMs} ms after ${attempt} attempts; ${[cut, last].filter(Boolean).join('; ')}. Check the VM's console log for boot or network failures`,
          { cause: lastFailure ?? error },
        );
      }
      await sleep(nextDelayMs, options.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
