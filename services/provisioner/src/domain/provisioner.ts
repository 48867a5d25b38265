// The provisioner's use cases: wait for a guest's SSH, run a step, copy files in, close a
// session. Adapters (gRPC) only convert and call these.
import type { ArchiveDecoder } from '../ports/archive-decoder.ts';
import type { BlobSource } from '../ports/blob-source.ts';
import type { ConnectAttempt, GuestConnection, GuestConnector } from '../ports/guest-connector.ts';
import type { Sha256Hashing } from '../ports/sha256-hashing.ts';
import { InvalidArgumentError } from './errors.ts';
import { stepArgv, type ExecOutcome, type ExecOutputSink, type ExecStep } from './exec-step.ts';
import { GuestShell } from './guest-shell.ts';
import { FileCopy, type CopySummary, type FileCopyRequest } from './file-copy.ts';
import { executeStep } from './step-execution.ts';
import { parseSshTarget, type SshTarget, type SshTargetInput } from './target.ts';
import { waitReady, type WaitReadyResult } from './wait-ready.ts';

export interface ProvisionerOptions {
  /** Allow targets that skip host key verification (debugging only). */
  allowAcceptAnyHostKey: boolean;
  defaultWaitReadyTimeoutMs: number;
  /** Where PutFiles' digest checks run (default: inline, on the event loop). */
  sha256?: Sha256Hashing;
}

/** A reused shell runs the command as it is: what a step would set up around it is refused. */
function checkShellStep(step: ExecStep): void {
  const set = [step.env.length > 0 && 'env', step.user && 'user', step.workdir && step.workdir !== '/' && 'working_dir', step.timeoutMs && 'timeout'].filter(Boolean);
  if (set.length > 0) throw new InvalidArgumentError(`reuse_shell runs the command as it is: ${set.join(', ')} cannot be set with it`);
}

export class Provisioner {
  /** Each pooled connection's long-lived shell, once a command asked for it; gone with the connection. */
  private readonly shells = new WeakMap<GuestConnection, GuestShell>();

  constructor(
    private readonly connector: GuestConnector,
    private readonly blobs: BlobSource,
    private readonly decoder: ArchiveDecoder,
    private readonly options: ProvisionerOptions,
  ) {}

  target(input: SshTargetInput): SshTarget {
    return parseSshTarget(input, this.options.allowAcceptAnyHostKey);
  }

  waitReady(
    input: SshTargetInput,
    options: { timeoutMs?: number; onAttempt?(attempt: ConnectAttempt): void; signal?: AbortSignal } = {},
  ): Promise<WaitReadyResult> {
    return waitReady(this.connector, this.target(input), {
      ...options,
      timeoutMs: options.timeoutMs || this.options.defaultWaitReadyTimeoutMs,
    });
  }

  async exec(input: SshTargetInput, step: ExecStep, onOutput: ExecOutputSink, signal?: AbortSignal): Promise<ExecOutcome> {
    if (step.reuseShell) checkShellStep(step);
    const connection = await this.connector.connect(this.target(input), signal);
    if (!step.reuseShell) return executeStep(connection, step, { onOutput, ...(signal ? { signal } : {}) });
    let shell = this.shells.get(connection);
    if (!shell) this.shells.set(connection, (shell = new GuestShell(connection)));
    const { exitCode, output } = await shell.run(stepArgv(step), signal);
    if (output.length > 0) await onOutput({ stream: 'stdout', data: output, at: new Date() });
    return { kind: 'exited', exitCode };
  }

  async putFiles(input: SshTargetInput, request: FileCopyRequest, signal?: AbortSignal): Promise<CopySummary> {
    const connection = await this.connector.connect(this.target(input), signal);
    return new FileCopy(connection, this.blobs, this.decoder, signal, this.options.sha256).copy(request);
  }

  async closeSession(sessionId: string): Promise<boolean> {
    return this.connector.close(sessionId);
  }

  shutdown(): Promise<void> {
    return this.connector.closeAll();
  }
}
