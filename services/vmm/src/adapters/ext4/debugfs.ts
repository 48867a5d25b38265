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
  const problems = result.stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !BENIGN.some((pattern) => pattern.test(line)));
  // "mkdir: Ext2 directory already exists" follows the ext2fs_mkdir line; also benign.
  const real = problems.filter((line) => !/^mkdir: /.test(line) && !/^rm: /.test(line));
  if (real.length > 0) {
    throw new Error(`debugfs ${options.write ? '-w ' : ''}on ${image} failed: ${real.join(' | ')}`);
  }
  return { stdout: result.stdout, missing: /File not found by ext2_lookup/.test(result.stderr) };
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
