import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { GuestDirectory, GuestFile } from '../../ports/disk.ts';
import { InvalidArgumentError } from '../../domain/errors.ts';
import { runCommand } from '../exec/run-command.ts';

// debugfs pipes stat/cat output through a pager when one is configured; never wanted here.
const ENV = { ...process.env, DEBUGFS_PAGER: '__none__', PAGER: '__none__' };

// debugfs exits 0 even when a request fails; these messages are expected for idempotent scripts.
const BENIGN = [/directory already exists/i, /File not found by ext2_lookup/i, /^debugfs \d/];

/**
 * A debugfs request script: directories first (parents before children), then files replaced whole.
 * Only directories in `missing` are made: debugfs 1.47's mkdir of an existing name leaks an inode and
 * leaves the filesystem inconsistent, so callers measure first (see missingPaths).
 */
export function debugfsScript(
  directories: GuestDirectory[],
  files: (GuestFile & { hostPath: string })[],
  missing: ReadonlySet<string> = new Set(directories.map((d) => d.path)),
): string {
  const lines: string[] = [];
  for (const dir of directories) {
    checkGuestPath(dir.path);
    if (missing.has(dir.path)) lines.push(`mkdir ${dir.path}`);
    lines.push(...ownership(dir.path, 0o040000 | dir.mode, dir.uid, dir.gid));
  }
  for (const file of files) {
    checkGuestPath(file.path);
    lines.push(`rm ${file.path}`, `write ${file.hostPath} ${file.path}`);
    lines.push(...ownership(file.path, 0o100000 | file.mode, file.uid, file.gid));
  }
  return `${lines.join('\n')}\n`;
}

function ownership(path: string, mode: number, uid = 0, gid = 0): string[] {
  return [
    `set_inode_field ${path} mode 0${mode.toString(8)}`,
    `set_inode_field ${path} uid ${uid}`,
    `set_inode_field ${path} gid ${gid}`,
  ];
}

/** debugfs splits requests on whitespace; guest paths here are ours, but refuse anything odd. */
export function checkGuestPath(path: string): void {
  if (!/^\/[A-Za-z0-9._/@+-]+$/.test(path) || path.includes('..')) {
    throw new Error(
      `guest path "${path}" cannot be written with debugfs: use an absolute path without spaces or ..`,
    );
  }
}

/** Which of `paths` do not exist in the image (one read-only debugfs run). */
export async function missingPaths(image: string, paths: string[]): Promise<Set<string>> {
  paths.forEach(checkGuestPath);
  if (paths.length === 0) return new Set();
  const result = await runCommand('debugfs', ['-f', '-', image], {
    input: paths.map((p) => `stat ${p}\n`).join(''),
    env: ENV,
  });
  const missing = new Set<string>();
  for (const line of result.stderr.split('\n')) {
    const match = /^(\S+): File not found by ext2_lookup/.exec(line.trim());
    if (match?.[1]) missing.add(match[1]);
  }
  return missing;
}

export async function runDebugfs(
  image: string,
  script: string,
  options: { write: boolean; signal?: AbortSignal },
): Promise<{ stdout: Buffer; missing: boolean }> {
  // A single read request goes through -R so stdout carries only its output (-f echoes requests).
  const single = !options.write && script.trim().split('\n').length === 1;
  const args = single ? ['-R', script.trim(), image] : [...(options.write ? ['-w'] : []), '-f', '-', image];
  const signal = options.signal ? { signal: options.signal } : {};
  const result = await runCommand('debugfs', args, single ? { env: ENV, ...signal } : { input: script, env: ENV, ...signal });
  refuseDebugfsErrors(image, options.write, result.stderr);
  return { stdout: result.stdout, missing: /File not found by ext2_lookup/.test(result.stderr) };
}

function refuseDebugfsErrors(image: string, write: boolean, stderr: string): void {
  const problems = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !BENIGN.some((pattern) => pattern.test(line)));
  // "mkdir: Ext2 directory already exists" follows the ext2fs_mkdir line; also benign.
  const real = problems.filter((line) => !/^mkdir: /.test(line) && !/^rm: /.test(line));
  if (real.length > 0) {
    throw new Error(`debugfs ${write ? '-w ' : ''}on ${image} failed: ${real.join(' | ')}`);
  }
}

/** What debugfs echoes, unbuffered, when its request file reaches this comment: all before it is done. */
const PAUSE_MARK = '# kindling: dumped';

/**
 * One debugfs -w run (one start, one open of the filesystem) that dumps `dumps` (guest path → host
 * file; a missing one dumps nothing), waits for `between` to resolve, and only then runs `requests`:
 * a caller keeps what it read before anything changes. A `between` that fails changes nothing.
 * With `undoFile`, debugfs records there (e2undo's format) the old content of every block it writes.
 */
export async function debugfsDumpThenWrite(
  image: string,
  options: {
    dumps: { path: string; hostPath: string }[];
    between?: () => Promise<void>;
    requests: string;
    undoFile?: string;
  },
): Promise<void> {
  options.dumps.forEach(({ path }) => checkGuestPath(path));
  const args = ['-w', ...(options.undoFile ? ['-z', options.undoFile] : []), '-f', '-', image];
  const child = spawn('debugfs', args, { stdio: ['pipe', 'pipe', 'pipe'], env: ENV });
  let stdout = '';
  const stderr: Buffer[] = [];
  let paused: (() => void) | undefined;
  const reachedPause = new Promise<void>((resolve) => (paused = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.includes(`${PAUSE_MARK}\n`)) paused?.();
  });
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.on('error', () => {});
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (error) => reject(new Error(`could not run debugfs: ${error.message}`, { cause: error })));
    child.on('close', (code, signalName) => resolve(code ?? (signalName ? 128 : 1)));
  });
  const failure = (code: number) => {
    const tail = Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-5).join(' | ');
    return new Error(`debugfs -w on ${image} exited with ${code}: ${tail || '(no output)'}`);
  };
  child.stdin.write(`${options.dumps.map(({ path, hostPath }) => `dump ${path} ${hostPath}\n`).join('')}${PAUSE_MARK}\n`);
  const early = await Promise.race([reachedPause.then(() => undefined), exited]);
  if (early !== undefined) throw failure(early);
  try {
    // stderr is unbuffered too: an unopenable filesystem has said so by now (next turn of the loop)
    await new Promise((resolve) => setImmediate(resolve));
    refuseDebugfsErrors(image, true, Buffer.concat(stderr).toString('utf8'));
    await options.between?.();
  } catch (error) {
    child.stdin.end(); // nothing written: debugfs closes the filesystem as it found it
    await exited.catch(() => undefined);
    throw error;
  }
  child.stdin.end(options.requests);
  const code = await exited;
  if (code !== 0) throw failure(code);
  refuseDebugfsErrors(image, true, Buffer.concat(stderr).toString('utf8'));
}

/** A request argument for debugfs's parser, which takes "" inside quotes as a literal quote. */
export function quoteDebugfsArg(value: string): string {
  if (/[\n\r\0]/.test(value)) {
    throw new InvalidArgumentError(`path ${JSON.stringify(value)} has a line break or NUL: debugfs cannot name it`);
  }
  return `"${value.replaceAll('"', '""')}"`;
}

/** One read-only request through -R: its output and its error text, whatever the request said. */
export async function debugfsRequest(
  image: string,
  request: string,
  signal?: AbortSignal,
): Promise<{ stdout: Buffer; stderr: string }> {
  const { stdout, stderr } = await runCommand('debugfs', ['-R', request, image], { env: ENV, ...(signal ? { signal } : {}) });
  return { stdout, stderr };
}

/**
 * Several read-only requests in one debugfs run (one open of the filesystem); the output of each, in
 * order. With -f debugfs echoes every request as "debugfs: <request>" before its output: the separator.
 */
export async function debugfsRequests(image: string, requests: string[], signal?: AbortSignal): Promise<string[]> {
  if (requests.length === 0) return [];
  const { stdout } = await runCommand('debugfs', ['-f', '-', image], {
    input: requests.map((r) => `${r}\n`).join(''),
    env: ENV,
    ...(signal ? { signal } : {}),
  });
  const text = stdout.toString('utf8');
  const outputs: string[] = [];
  let from = 0;
  for (let i = 0; i < requests.length; i++) {
    const echo = `debugfs: ${requests[i]}\n`;
    const start = text.indexOf(echo, from);
    if (start < 0) throw new Error(`debugfs on ${image} stopped before request ${JSON.stringify(requests[i])}`);
    const next = i + 1 < requests.length ? text.indexOf(`debugfs: ${requests[i + 1]}\n`, start + echo.length) : text.length;
    outputs.push(text.slice(start + echo.length, next < 0 ? text.length : next));
    from = next < 0 ? text.length : next;
  }
  return outputs;
}

/**
 * The bytes of the filesystem an e2fsprogs undo file (-z) holds the old content of, i.e. every
 * block the run wrote: from its key blocks, as e2undo reads them. Undefined when the file is not
 * a finished undo file this reader understands (the caller then trusts nothing).
 */
export async function undoFileRanges(undoFile: string): Promise<{ offset: number; length: number }[] | undefined> {
  const file = await readFile(undoFile).catch(() => undefined);
  if (!file || file.length < 72 || file.toString('latin1', 0, 8) !== 'E2UNDO02') return undefined;
  const numKeys = Number(file.readBigUInt64LE(8));
  const keyOffset = Number(file.readBigUInt64LE(24));
  const blockSize = file.readUInt32LE(32);
  const fsBlockSize = file.readUInt32LE(36);
  const finished = (file.readUInt32LE(44) & 1) === 1;
  const fsOffset = Number(file.readBigUInt64LE(64));
  if (!finished) return undefined;
  if (numKeys === 0) return [];
  if (blockSize < 1024 || fsBlockSize < 1024) return undefined;
  const keysPerBlock = blockSize / 16 - 1;
  const ranges: { offset: number; length: number }[] = [];
  let block = keyOffset;
  for (let first = 0; first < numKeys; first += keysPerBlock) {
    const at = block * blockSize;
    if (at + blockSize > file.length || file.readUInt32LE(at) !== 0xcadecade) return undefined;
    block++;
    for (let k = 0; k < Math.min(keysPerBlock, numKeys - first); k++) {
      const key = at + 16 + 16 * k;
      const length = file.readUInt32LE(key + 12);
      ranges.push({ offset: fsOffset + Number(file.readBigUInt64LE(key)) * fsBlockSize, length });
      block += Math.ceil(length / blockSize);
    }
  }
  return ranges;
}
