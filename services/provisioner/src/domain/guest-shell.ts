// A long-lived root shell on a guest for the caller's own short commands (fsfreeze and its thaw
// around a snapshot): each is one round trip on an open channel, where an Exec opens a channel, has
// sshd start a session and a shell, and wraps the command in a process group (0.3–0.7 s under TCG).
import { randomBytes } from 'node:crypto';
import type { GuestConnection } from '../ports/guest-connector.ts';
import { CancelledError, UnavailableError } from './errors.ts';
import { shellQuote } from './remote-command.ts';

/** Output kept for a command, at most (its tail): these commands print little. */
const OUTPUT_LIMIT = 64 * 1024;

/** A push-fed stdin for the shell's channel. */
class Feed implements AsyncIterable<Buffer> {
  private readonly queued: Buffer[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(data: Buffer): void {
    this.queued.push(data);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const next = this.queued.shift();
      if (next) yield next;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

interface Pending {
  readonly marker: RegExp;
  resolve(result: { exitCode: number; output: Buffer }): void;
  reject(error: Error): void;
}

interface OpenShell {
  readonly feed: Feed;
  readonly close: AbortController;
}

export class GuestShell {
  private shell: OpenShell | undefined;
  private output = Buffer.alloc(0);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly connection: GuestConnection) {}

  /** Runs argv in the shell, after any command before it; output is its stdout and stderr together. */
  run(argv: string[], signal?: AbortSignal): Promise<{ exitCode: number; output: Buffer }> {
    const result = this.queue.then(() => this.runNow(argv, signal));
    this.queue = result.catch(() => {});
    return result;
  }

  private async runNow(argv: string[], signal: AbortSignal | undefined): Promise<{ exitCode: number; output: Buffer }> {
    if (signal?.aborted) throw new CancelledError('the command was cancelled before it ran');
    const shell = this.open();
    const nonce = randomBytes(8).toString('hex');
    this.output = Buffer.alloc(0);
    const done = new Promise<{ exitCode: number; output: Buffer }>((resolve, reject) => {
      this.pending = { marker: new RegExp(`\\n?kindling-shell-${nonce} (\\d+)\\n`), resolve, reject };
    });
    const onAbort = (): void => {
      // the command may still run: only closing the shell stops waiting for it
      this.pending?.reject(new CancelledError('the command was cancelled; its shell was closed'));
      this.pending = undefined;
      shell.close.abort();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // printf starts a new line, so the marker is found even after output without a final newline
    shell.feed.push(Buffer.from(`${argv.map(shellQuote).join(' ')} </dev/null 2>&1; printf '\\nkindling-shell-${nonce} %d\\n' "$?"\n`));
    try {
      return await done;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private open(): OpenShell {
    if (this.shell) return this.shell;
    const shell: OpenShell = { feed: new Feed(), close: new AbortController() };
    this.shell = shell;
    const settled = (error: Error): void => {
      if (this.shell === shell) this.shell = undefined;
      shell.feed.end();
      this.pending?.reject(error);
      this.pending = undefined;
    };
    this.connection
      .run('exec /bin/sh', { stdin: shell.feed, signal: shell.close.signal, onOutput: ({ data }) => this.received(data) })
      .then(
        (exit) => settled(new UnavailableError(`the guest's shell ended (${exit.kind === 'exited' ? `exit ${exit.exitCode}` : exit.signal})`)),
        (error: Error) => settled(error instanceof CancelledError ? error : new UnavailableError(`the guest's shell failed: ${error.message}`, { cause: error })),
      );
    return shell;
  }

  private received(data: Buffer): void {
    this.output = Buffer.concat([this.output, data]).subarray(-OUTPUT_LIMIT);
    const pending = this.pending;
    if (!pending) return;
    const match = pending.marker.exec(this.output.toString('latin1'));
    if (!match) return;
    this.pending = undefined;
    const output = this.output.subarray(0, match.index);
    this.output = this.output.subarray(match.index + match[0].length);
    pending.resolve({ exitCode: Number(match[1]), output });
  }
}
