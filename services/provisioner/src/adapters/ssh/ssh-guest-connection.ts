// One SSH connection per VM, multiplexing exec and SFTP channels. If the link dropped
// between operations, the next operation reconnects transparently.
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import type { SshTarget } from '../../domain/target.ts';
import type { GuestConnection, GuestFileStat, RemoteExit, RemoteRun } from '../../ports/guest-connector.ts';
import { CancelledError, InternalError, UnavailableError } from '../../domain/errors.ts';
import { SftpSession } from './sftp-session.ts';
import { describeTarget, openSshClient, type SshClientOptions } from './ssh-client-factory.ts';

export class SshGuestConnection implements GuestConnection {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private sftp: Promise<SftpSession> | undefined;
  private closed = false;

  constructor(
    readonly target: SshTarget,
    private readonly options: SshClientOptions,
  ) {}

  get serverVersion(): string | undefined {
    // ssh2 keeps the peer's software version only on this internal field
    const software = (this.client as { _remoteVer?: string } | undefined)?._remoteVer;
    return software ? `SSH-2.0-${software}` : undefined;
  }

  /** Opens the connection now (WaitReady), so later calls reuse it. */
  async open(signal?: AbortSignal): Promise<void> {
    await this.ensureClient(signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.sftp = undefined;
    client?.end();
  }

  private ensureClient(signal?: AbortSignal): Promise<Client> {
    if (this.closed) return Promise.reject(new UnavailableError(`the connection to ${describeTarget(this.target)} was closed: the VM went away`));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= openSshClient(this.target, this.options, signal).then(
      (client) => {
        this.connecting = undefined;
        if (this.closed) {
          client.end();
          throw new UnavailableError(`the connection to ${describeTarget(this.target)} was closed: the VM went away`);
        }
        this.client = client;
        const forget = (): void => {
          if (this.client !== client) return;
          this.client = undefined;
          this.sftp = undefined;
        };
        client.on('close', forget);
        client.on('error', forget);
        return client;
      },
      (error: unknown) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }

  private session(): Promise<SftpSession> {
    this.sftp ??= this.ensureClient().then(
      (client) =>
        new Promise<SftpSession>((resolve, reject) =>
          client.sftp((error: Error | undefined, sftp: SFTPWrapper) => {
            if (error) return reject(new UnavailableError(`cannot open SFTP on ${describeTarget(this.target)}: ${error.message}`, { cause: error }));
            sftp.on('close', () => {
              if (this.sftp === current) this.sftp = undefined;
            });
            resolve(new SftpSession(sftp));
          }),
        ),
    );
    const current = this.sftp;
    current.catch(() => {
      if (this.sftp === current) this.sftp = undefined;
    });
    return current;
  }

  async run(command: string, io: RemoteRun): Promise<RemoteExit> {
    io.signal?.throwIfAborted();
    const client = await this.ensureClient(io.signal);
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec(command, (error, stream) =>
        error ? reject(new UnavailableError(`cannot open an exec channel on ${describeTarget(this.target)}: ${error.message}`, { cause: error })) : resolve(stream),
      ),
    );
    return new Promise<RemoteExit>((resolve, reject) => {
      let exit: RemoteExit | undefined;
      const onAbort = (): void => {
        channel.close();
        reject(new CancelledError(`the command on ${describeTarget(this.target)} was cancelled`));
      };
      const onClientGone = (): void => reject(new UnavailableError(`the SSH connection to ${describeTarget(this.target)} dropped while a command was running`));
      io.signal?.addEventListener('abort', onAbort, { once: true });
      client.once('close', onClientGone);
      // a slow consumer pauses the channel, so SSH's window holds the remote writer back
      let waiting = 0;
      const deliver = (stream: 'stdout' | 'stderr', data: Buffer): void => {
        const wait = io.onOutput({ stream, data, at: new Date() });
        if (!wait) return;
        if (waiting++ === 0) {
          channel.pause();
          channel.stderr.pause();
        }
        const release = (): void => {
          if (--waiting > 0) return;
          channel.resume();
          channel.stderr.resume();
        };
        wait.then(release, release);
      };
      channel.on('data', (data: Buffer) => deliver('stdout', data));
      channel.stderr.on('data', (data: Buffer) => deliver('stderr', data));
      channel.on('exit', (code: number | null, signal?: string, coreDumped?: boolean) => {
        exit = code !== null && code !== undefined ? { kind: 'exited', exitCode: code } : { kind: 'signaled', signal: (signal ?? 'UNKNOWN').replace(/^SIG/, ''), coreDumped: coreDumped === true };
        io.onExit?.(exit);
      });
      channel.on('close', () => {
        io.signal?.removeEventListener('abort', onAbort);
        client.removeListener('close', onClientGone);
        if (exit) resolve(exit);
        else reject(new InternalError(`the command channel on ${describeTarget(this.target)} closed without an exit status`));
      });
      if (io.stdin) void pumpStdin(io.stdin, channel).catch(() => channel.close());
      else channel.end();
    });
  }

  private async withSftp<T>(operation: (sftp: SftpSession) => Promise<T>): Promise<T> {
    return operation(await this.session());
  }

  readFile(path: string): Promise<Buffer> {
    return this.withSftp((sftp) => sftp.readFile(path));
  }
  stat(path: string): Promise<GuestFileStat | undefined> {
    return this.withSftp((sftp) => sftp.stat(path));
  }
  mkdir(path: string, mode: number): Promise<void> {
    return this.withSftp((sftp) => sftp.mkdir(path, mode));
  }
  writeFile(path: string, mode: number, data: AsyncIterable<Buffer>, mtime?: Date): Promise<number> {
    return this.withSftp((sftp) => sftp.writeFile(path, mode, data, mtime));
  }
  setOwner(path: string, uid: number, gid: number): Promise<void> {
    return this.withSftp((sftp) => sftp.setOwner(path, uid, gid));
  }
  setMode(path: string, mode: number): Promise<void> {
    return this.withSftp((sftp) => sftp.setMode(path, mode));
  }
  setTimes(path: string, mtime: Date): Promise<void> {
    return this.withSftp((sftp) => sftp.setTimes(path, mtime));
  }
  symlink(linkTarget: string, path: string): Promise<void> {
    return this.withSftp((sftp) => sftp.symlink(linkTarget, path));
  }
  rename(from: string, to: string): Promise<void> {
    return this.withSftp((sftp) => sftp.rename(from, to));
  }
  remove(path: string): Promise<void> {
    return this.withSftp((sftp) => sftp.remove(path));
  }
}

async function pumpStdin(source: AsyncIterable<Buffer>, channel: ClientChannel): Promise<void> {
  for await (const chunk of source) {
    if (!channel.write(chunk)) await new Promise((resolve) => channel.once('drain', resolve));
  }
  channel.end();
}
