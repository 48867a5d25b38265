// Proto ↔ domain conversions for the provisioner's gRPC adapter.
import type { Duration } from '@kindling/proto/gen/google/protobuf/duration.ts';
import { LogStream } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { FileType, type FileEntry } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { CopySource as ProtoCopySource, ExecRequest, ExitStatus, SshTarget as ProtoSshTarget, TransferDisk } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import type { ContextFile, ContextFileType, CopySource } from '../../domain/copy-plan.ts';
import { InvalidArgumentError } from '../../domain/errors.ts';
import type { ExecOutcome, ExecStep } from '../../domain/exec-step.ts';
import type { StagedTransferDisk } from '../../domain/file-copy.ts';
import type { SshTargetInput } from '../../domain/target.ts';

/** A request's timeout in ms; a negative one is refused (it would expire before anything ran). */
export function toMs(duration: Duration | undefined, field: string): number | undefined {
  if (!duration) return undefined;
  const ms = Number(duration.seconds) * 1000 + Math.round(duration.nanos / 1e6);
  if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`${field} ${duration.seconds}s ${duration.nanos}ns is negative: pass a positive duration, or none for the default`);
  return ms;
}

export function toDuration(ms: number): Duration {
  const whole = Math.floor(ms / 1000);
  return { seconds: String(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

export function toTargetInput(target: ProtoSshTarget | undefined): SshTargetInput {
  if (!target) throw new InvalidArgumentError('target is missing: pass host, private_key and host_key of the guest');
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    ...(target.privateKey ? { privateKey: target.privateKey } : {}),
    ...(target.agentSocket ? { agentSocket: target.agentSocket } : {}),
    ...(target.hostKey ? { hostKey: target.hostKey } : {}),
    acceptAnyHostKey: target.insecureIgnoreHostKey,
    ...(target.sessionId ? { sessionId: target.sessionId } : {}),
  };
}

export function toExecStep(request: ExecRequest): ExecStep {
  const command = request.command;
  if (!command) throw new InvalidArgumentError('Exec needs a command: shell (a script run by SHELL) or argv (exec form)');
  const timeoutMs = toMs(request.timeout, 'timeout');
  return {
    ...(command.$case === 'shell' ? { command: command.value.script, shell: command.value.shell } : { argv: command.value.argv }),
    env: request.env,
    ...(request.workingDir ? { workdir: request.workingDir } : {}),
    ...(request.user ? { user: request.user } : {}),
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(request.reuseShell ? { reuseShell: true } : {}),
  };
}

export function toExitStatus(outcome: ExecOutcome, durationMs: number): ExitStatus {
  const duration = toDuration(durationMs);
  switch (outcome.kind) {
    case 'exited':
      return { exitCode: outcome.exitCode, signal: '', timedOut: false, duration };
    case 'signaled':
      return { signal: outcome.signal, timedOut: false, duration };
    case 'timed_out':
      return { signal: 'KILL', timedOut: true, duration };
  }
}

export function toLogStream(stream: 'stdout' | 'stderr'): LogStream {
  return stream === 'stdout' ? LogStream.LOG_STREAM_STDOUT : LogStream.LOG_STREAM_STDERR;
}

const FILE_TYPES: Partial<Record<FileType, ContextFileType>> = {
  [FileType.FILE_TYPE_REGULAR]: 'file',
  [FileType.FILE_TYPE_DIRECTORY]: 'directory',
  [FileType.FILE_TYPE_SYMLINK]: 'symlink',
};

function toContextFile(entry: FileEntry, pattern: string, preserveOwnership: boolean): ContextFile {
  const type = FILE_TYPES[entry.type];
  if (!type) throw new InvalidArgumentError(`file "${entry.path}" of source "${pattern}" has no file type`);
  return {
    path: entry.path,
    type,
    size: Number(entry.size),
    mode: entry.mode,
    digest: entry.digest,
    linkTarget: entry.linkTarget,
    matchRoot: entry.matchRoot || entry.path,
    ...(entry.mtime ? { mtime: entry.mtime } : {}),
    ...(preserveOwnership ? { owner: { uid: entry.uid, gid: entry.gid } } : {}),
  };
}

/** preserveOwnership: files keep the uid/gid their listing gives (COPY --from), else they become 0:0. */
export function toCopySources(sources: ProtoCopySource[], preserveOwnership = false): CopySource[] {
  if (sources.length === 0) throw new InvalidArgumentError('PutFiles needs at least one source');
  return sources.map((source) => ({ pattern: source.pattern, files: source.files.map((entry) => toContextFile(entry, source.pattern, preserveOwnership)) }));
}

/** PutFilesRequest.transfer_disk, checked: the device and offsets go into a guest command line. */
export function toStagedTransferDisk(disk: TransferDisk): StagedTransferDisk {
  if (!/^\/dev\/[a-z0-9]+$/.test(disk.device))
    throw new InvalidArgumentError(`transfer_disk.device ${JSON.stringify(disk.device)} is not a block device path such as /dev/vdb`);
  const offsets = new Map<string, number>();
  disk.blobs.forEach((blob, index) => {
    const offset = Number(blob.offset);
    if (!/^sha256:[0-9a-f]{64}$/.test(blob.digest)) throw new InvalidArgumentError(`transfer_disk.blobs[${index}].digest "${blob.digest}" is not "sha256:<64 hex digits>"`);
    if (!Number.isSafeInteger(offset) || offset % (1024 * 1024) !== 0)
      throw new InvalidArgumentError(`transfer_disk.blobs[${index}].offset ${blob.offset} is not a multiple of 1 MiB`);
    offsets.set(blob.digest, offset);
  });
  return { device: disk.device, offsets };
}
