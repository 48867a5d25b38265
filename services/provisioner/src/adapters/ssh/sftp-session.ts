// Promise wrappers over one ssh2 SFTP channel, plus a pipelined writer: many WRITE requests
// in flight at once, as fastPut does, so a stream reaches near-fastPut throughput.
import type { SFTPWrapper, Stats } from 'ssh2';
import { FailedPreconditionError, UnavailableError } from '../../domain/errors.ts';
import type { GuestFileStat } from '../../ports/guest-connector.ts';

const WRITE_SLICE = 128 * 1024;
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
const NO_SUCH_FILE = 2;
/** SSH_FX_NO_CONNECTION and SSH_FX_CONNECTION_LOST: the link, not the guest's filesystem. */
const LINK_FAILURES = new Set([6, 7]);

/** ssh2 reports a bare "No such file" or "Failure": say which operation on which guest path. */
function guestFileError(what: string, error: Error): Error {
  const status = (error as { code?: unknown }).code;
  if (typeof status !== 'number' || LINK_FAILURES.has(status)) {
    return new UnavailableError(`SFTP ${what} in the guest failed: ${error.message} (the SSH link failed; the next call reconnects)`, { cause: error });
  }
  return new FailedPreconditionError(`SFTP ${what} in the guest failed: ${error.message} (SFTP status ${status})`, { cause: error });
}

function call<T>(what: string, fn: (cb: (error: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((error, value) => (error ? reject(guestFileError(what, error)) : resolve(value))));
}

export class SftpSession {
  constructor(private readonly sftp: SFTPWrapper) {}

  end(): void {
    this.sftp.end();
  }

  readFile(path: string): Promise<Buffer> {
    return call<Buffer>(`read ${path}`, (cb) => this.sftp.readFile(path, cb));
  }

  async stat(path: string): Promise<GuestFileStat | undefined> {
    try {
      const stats = await call<Stats>(`lstat ${path}`, (cb) => this.sftp.lstat(path, cb));
      const type = stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : stats.isSymbolicLink() ? 'symlink' : 'other';
      return { type, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, size: stats.size };
    } catch (error) {
      if (((error as Error).cause as { code?: unknown } | undefined)?.code === NO_SUCH_FILE) return undefined;
      throw error;
    }
  }

  mkdir(path: string, mode: number): Promise<void> {
    return call<void>(`mkdir ${path}`, (cb) => this.sftp.mkdir(path, { mode }, (error) => cb(error, undefined)));
  }

  setOwner(path: string, uid: number, gid: number): Promise<void> {
    return call<void>(`chown ${uid}:${gid} ${path}`, (cb) => this.sftp.chown(path, uid, gid, (error) => cb(error, undefined)));
  }

  setMode(path: string, mode: number): Promise<void> {
    return call<void>(`chmod ${mode.toString(8)} ${path}`, (cb) => this.sftp.chmod(path, mode, (error) => cb(error, undefined)));
  }

  setTimes(path: string, mtime: Date): Promise<void> {
    return call<void>(`utimes ${path}`, (cb) => this.sftp.utimes(path, mtime, mtime, (error) => cb(error, undefined)));
  }

  symlink(linkTarget: string, path: string): Promise<void> {
    return call<void>(`symlink ${path} -> ${linkTarget}`, (cb) => this.sftp.symlink(linkTarget, path, (error) => cb(error, undefined)));
  }

  rename(from: string, to: string): Promise<void> {
    return call<void>(`rename ${from} to ${to}`, (cb) => this.sftp.ext_openssh_rename(from, to, (error) => cb(error, undefined)));
  }

  async remove(path: string): Promise<void> {
    const stats = await this.stat(path);
    if (!stats) return;
    if (stats.type === 'directory') return call<void>(`rmdir ${path}`, (cb) => this.sftp.rmdir(path, (error) => cb(error, undefined)));
    return call<void>(`unlink ${path}`, (cb) => this.sftp.unlink(path, (error) => cb(error, undefined)));
  }

  async writeFile(path: string, mode: number, data: AsyncIterable<Buffer>, mtime?: Date): Promise<number> {
    const handle = await call<Buffer>(`open ${path} for writing`, (cb) => this.sftp.open(path, 'w', { mode }, cb));
    let position = 0;
    let inFlight = 0;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const settled = (): void => {
      wake?.();
      wake = undefined;
    };
    const waitUntil = async (condition: () => boolean): Promise<void> => {
      while (!condition() && !failure) await new Promise<void>((resolve) => (wake = resolve));
    };
    try {
      for await (const chunk of data) {
        for (let offset = 0; offset < chunk.length; offset += WRITE_SLICE) {
          const length = Math.min(WRITE_SLICE, chunk.length - offset);
          await waitUntil(() => inFlight + length <= MAX_IN_FLIGHT_BYTES);
          if (failure) throw failure;
          inFlight += length;
          this.sftp.write(handle, chunk, offset, length, position, (error) => {
            inFlight -= length;
            if (error && !failure) failure = guestFileError(`write ${path}`, error);
            settled();
          });
          position += length;
        }
      }
      await waitUntil(() => inFlight === 0);
      if (failure) throw failure;
      // the open mode is filtered by the server's umask; set it explicitly
      await call<void>(`chmod ${mode.toString(8)} ${path}`, (cb) => this.sftp.fchmod(handle, mode, (error) => cb(error, undefined)));
      if (mtime) await call<void>(`utimes ${path}`, (cb) => this.sftp.futimes(handle, mtime, mtime, (error) => cb(error, undefined)));
    } finally {
      await waitUntil(() => inFlight === 0).catch(() => {});
      await call<void>(`close ${path}`, (cb) => this.sftp.close(handle, (error) => cb(error, undefined))).catch(() => {});
    }
    return position;
  }
}
