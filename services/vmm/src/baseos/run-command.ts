import { spawn } from 'node:child_process';

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string | Buffer;
  /** Called with each line of stderr+stdout as it arrives (progress output of long tools). */
  readonly onLine?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Resolve with the output even when the tool exits non-zero (the caller judges the output). */
  readonly allowFailure?: boolean;
}

export interface RunResult {
  readonly exitCode: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** A tool exited non-zero: the message carries the command and the tail of its output, which is what an operator needs. */
export class CommandFailedError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly outputTail: string,
  ) {
    super(`${command} exited with ${exitCode ?? 'a signal'}${outputTail ? `:\n${outputTail}` : ''}`);
    this.name = 'CommandFailedError';
  }
}

const tail = (text: string, lines = 30): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/** Runs a program (no shell), collecting stdout; rejects with CommandFailedError on a non-zero exit. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    let err = '';
    let pending = '';
    const feed = (chunk: string): void => {
      if (!opts.onLine) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) opts.onLine(line);
    };
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      feed(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.length > 1 << 20) err = err.slice(-(1 << 19));
      feed(d.toString());
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code) => {
      if (pending && opts.onLine) opts.onLine(pending);
      if (code === 0 || opts.allowFailure)
        resolve({ exitCode: code, stdout: Buffer.concat(out), stderr: err });
      else
        reject(
          new CommandFailedError([file, ...args].join(' '), code, tail(err || Buffer.concat(out).toString())),
        );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
