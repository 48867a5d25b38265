import { spawn } from 'node:child_process';
import { redactUrl } from '../../domain/network-policy.ts';

export interface GitRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export class GitCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args[0]} failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}

/** Removes credentials git may echo back in URLs. */
export function redactGitOutput(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'"]+/giu, (u) => redactUrl(u));
}

/** Runs git to completion, collecting stdout (bounded) and redacted stderr. */
export function runGit(
  args: string[],
  options: GitRunOptions,
  maxStdout = 64 * 1024 * 1024,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: options.signal,
    });
    const out: Buffer[] = [];
    let outSize = 0;
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      outSize += c.length;
      if (outSize > maxStdout) child.kill('SIGKILL');
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (err.length < 16384) err += c.toString('utf8');
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else
        reject(
          new GitCommandError(
            args.map((a) => redactGitOutput(a)),
            code,
            redactGitOutput(err),
          ),
        );
    });
  });
}

/**
 * Reads `git cat-file --batch` output: for each object a header line
 * "<oid> <type> <size>", the content, and a newline. Yields contents as
 * chunk streams that must be consumed in order.
 */
export class CatFileBatchReader {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly source: AsyncIterator<Buffer>;

  constructor(stdout: AsyncIterable<Buffer>) {
    this.source = stdout[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    const next = await this.source.next();
    if (next.done) return false;
    this.buffered = this.buffered.length === 0 ? next.value : Buffer.concat([this.buffered, next.value]);
    return true;
  }

  async header(): Promise<{ oid: string; type: string; size: number }> {
    for (;;) {
      const nl = this.buffered.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buffered.subarray(0, nl).toString('utf8');
        this.buffered = this.buffered.subarray(nl + 1);
        const [oid = '', type = '', size = ''] = line.split(' ');
        if (type === 'missing' || size === '') throw new Error(`git cat-file: object ${oid} is missing`);
        return { oid, type, size: Number(size) };
      }
      if (!(await this.fill())) throw new Error('git cat-file ended early');
    }
  }

  /** The next `size` bytes, then the trailing newline is skipped. */
  async *content(size: number): AsyncGenerator<Buffer> {
    let left = size;
    while (left > 0) {
      if (this.buffered.length === 0 && !(await this.fill()))
        throw new Error('git cat-file ended inside an object');
      const take = Math.min(left, this.buffered.length);
      const part = this.buffered.subarray(0, take);
      this.buffered = this.buffered.subarray(take);
      left -= take;
      yield part;
    }
    while (this.buffered.length === 0) if (!(await this.fill())) throw new Error('git cat-file ended early');
    this.buffered = this.buffered.subarray(1);
  }
}
