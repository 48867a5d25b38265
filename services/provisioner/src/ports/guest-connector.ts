import type { ExecOutputSink } from '../domain/exec-step.ts';
import type { SshTarget } from '../domain/target.ts';

/** How a remote command ended, as the SSH server reports it. */
export type RemoteExit = { kind: 'exited'; exitCode: number } | { kind: 'signaled'; signal: string; coreDumped: boolean };

export interface RemoteRun {
  /** Output as it arrives; while a returned promise is pending, the channel is paused (flow control). */
  onOutput: ExecOutputSink;
  /** Bytes for the command's stdin; stdin is closed when it ends (or at once without it). */
  stdin?: AsyncIterable<Buffer>;
  /** Told as soon as the server reports the exit, which may be long before the channel closes
   *  (a background process still holding stdout keeps it open). */
  onExit?(exit: RemoteExit): void;
  /** Aborting closes the channel; it does not by itself kill the remote process. */
  signal?: AbortSignal;
}

export interface GuestFileStat {
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

/** A live, multiplexed session to one guest. Every method may reconnect once if the link dropped. */
export interface GuestConnection {
  /** The server's protocol and software version, e.g. "SSH-2.0-OpenSSH_9.2p1". */
  readonly serverVersion: string | undefined;
  run(command: string, io: RemoteRun): Promise<RemoteExit>;
  readFile(path: string): Promise<Buffer>;
  stat(path: string): Promise<GuestFileStat | undefined>;
  mkdir(path: string, mode: number): Promise<void>;
  /** Writes the whole stream to `path` (created or truncated) with `mode` (and `mtime`); returns bytes written. */
  writeFile(path: string, mode: number, data: AsyncIterable<Buffer>, mtime?: Date): Promise<number>;
  setOwner(path: string, uid: number, gid: number): Promise<void>;
  setMode(path: string, mode: number): Promise<void>;
  /** Sets access and modification time (following a symlink). */
  setTimes(path: string, mtime: Date): Promise<void>;
  symlink(linkTarget: string, path: string): Promise<void>;
  /** Atomic replace (posix-rename). */
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
}

export interface ConnectAttempt {
  attempt: number;
  at: Date;
  error?: Error;
  retryable: boolean;
  nextDelayMs?: number;
}

export interface GuestConnector {
  /**
   * The pooled connection for target.sessionId, opened (once) if needed. Throws UnavailableError when
   * the guest is not reachable yet (refused, timeout, reset), PermissionDeniedError when the key is
   * refused and FailedPreconditionError on a host key mismatch.
   */
  connect(target: SshTarget, signal?: AbortSignal): Promise<GuestConnection>;
  /** Closes and forgets the VM's connection (the VM went away); false if none was open. */
  close(sessionId: string): Promise<boolean>;
  closeAll(): Promise<void>;
}
