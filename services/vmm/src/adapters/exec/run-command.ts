import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export class CommandFailedError extends Error {
  constructor(
    readonly command: string,
    readonly result: CommandResult,
  ) {
    const tail = result.stderr.trim().split('\n').slice(-5).join(' | ');
    super(`\`${command}\` exited with ${result.code}: ${tail || '(no output)'}`);
    this.name = 'CommandFailedError';
  }
}

/** Runs a host tool to completion; rejects with its stderr tail when it exits non-zero (unless allowFailure). */
export function runCommand(
  file: string,
  args: readonly string[],
  options: {
    signal?: AbortSignal;
    input?: string | Buffer;
    allowFailure?: boolean;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<CommandResult> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) =>
      reject(new Error(`could not run \`${command}\`: ${error.message}`, { cause: error })),
    );
    child.on('close', (code, signalName) => {
      const result = {
        code: code ?? (signalName ? 128 : 1),
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (result.code !== 0 && !options.allowFailure) reject(new CommandFailedError(command, result));
      else resolve(result);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
