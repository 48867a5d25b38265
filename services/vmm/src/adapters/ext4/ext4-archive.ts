/**
 * Files in and out of ext4 images as tar archives, never mounting anything. Out: each asked path is
 * resolved inside the image (image-paths.ts), copied out by inode with debugfs rdump into a private
 * scratch directory, repaired where rdump loses things (rdump-fixups.ts), and streamed by GNU tar
 * with numeric owners. In: the archive is checked as it streams (tar-guard.ts), extracted by GNU tar as
 * root (owners and modes kept) into a private scratch directory, and packed with mkfs.ext4 -d.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../../domain/errors.ts';
import { CommandFailedError, runCommand } from '../exec/run-command.ts';
import { quoteDebugfsArg, runDebugfs } from './debugfs.ts';
import { resolveImagePath } from './image-paths.ts';
import { repairRdumpCopy, type HardLinks } from './rdump-fixups.ts';
import { TarGuard } from './tar-guard.ts';

const DEFAULT_EXTRA_BYTES = 64 * 1024 * 1024;
const MKFS_ATTEMPTS = 3;

/** A private (0700) scratch directory under `root`, for one export or one upload. */
async function scratchDirectory(root: string, purpose: string): Promise<string> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  return mkdtemp(join(root, `${purpose}-`));
}

/**
 * A tar of `paths` (absolute, each resolving in the image): entries named by the path as asked
 * without its leading "/", a directory with everything below it. The scratch copy is removed however
 * the stream ends (done, failed, or its consumer gone).
 */
export async function* exportTar(
  image: string,
  paths: string[],
  scratchRoot: string,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const scratch = await scratchDirectory(scratchRoot, 'export');
  let tar: ChildProcessByStdio<null, Readable, Readable> | undefined;
  try {
    const links: HardLinks = new Map();
    const tarArgs: string[] = [];
    for (const [index, path] of paths.entries()) {
      const inode = await resolveImagePath(image, path, signal);
      if (!inode) throw new Error(`${path} no longer resolves in ${image}`);
      // each path gets its own root: "/a" and "/a/b" may both be asked, and resolve differently
      const root = join(scratch, `root-${index}`);
      const dumpDir = join(scratch, `dump-${index}`);
      await mkdir(dumpDir);
      // rdump by inode: the copy is named "<ino>", whatever the path resolved through
      await runDebugfs(image, `rdump <${inode.ino}> ${quoteDebugfsArg(dumpDir)}`, { write: false, signal });
      // "/" itself is archived as "." (its entries "./etc", …)
      const name = path.replace(/^\/+/, '') || '.';
      const copy = join(root, name);
      await mkdir(dirname(copy), { recursive: true });
      await rename(join(dumpDir, `<${inode.ino}>`), copy);
      await repairRdumpCopy(image, inode, copy, links, signal);
      // -C applies to the names after it; "--" would end the options, so no name may look like one
      tarArgs.push('-C', root, name.startsWith('-') ? `./${name}` : name);
    }
    signal.throwIfAborted();
    tar = spawn('tar', ['-c', '--numeric-owner', '-f', '-', ...tarArgs], { stdio: ['ignore', 'pipe', 'pipe'], signal });
    const stderr = collectText(tar.stderr);
    const exited = new Promise<number | null>((resolve) => tar!.once('close', resolve));
    tar.once('error', () => {});
    for await (const chunk of tar.stdout as AsyncIterable<Buffer>) yield chunk;
    const code = await exited;
    if (code !== 0) throw new Error(`tar of ${paths.join(', ')} from ${image} failed: ${stderr().trim() || `exit ${code}`}`);
  } finally {
    if (tar && tar.exitCode === null && tar.signalCode === null) tar.kill('SIGKILL');
    await rm(scratch, { recursive: true, force: true });
  }
}

function collectText(stream: Readable): () => string {
  let text = '';
  stream.on('data', (chunk: Buffer) => (text = (text + chunk.toString()).slice(-4000)));
  return () => text;
}

/** Makes `destination` an ext4 image holding the archive's files (numeric owners and modes as archived). */
export async function ext4FromTar(
  archive: AsyncIterable<Uint8Array>,
  destination: string,
  extraBytes: number,
  scratchRoot: string,
  signal: AbortSignal,
): Promise<void> {
  const scratch = await scratchDirectory(scratchRoot, 'archive');
  try {
    const root = join(scratch, 'root');
    await mkdir(root, { mode: 0o755 });
    const guard = await extractChecked(archive, root, signal);
    const { stdout } = await runCommand('du', ['-s', '-B1', root], { signal });
    const used = Number(stdout.toString().split(/\s/)[0] ?? 0);
    await packExt4(root, destination, used, guard.entries, extraBytes || DEFAULT_EXTRA_BYTES, signal);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Streams the archive through the guard into `tar -x`; the guard's refusal wins over tar's complaint. */
async function extractChecked(archive: AsyncIterable<Uint8Array>, root: string, signal: AbortSignal): Promise<TarGuard> {
  const guard = new TarGuard();
  async function* checked(): AsyncGenerator<Uint8Array> {
    for await (const chunk of archive) {
      guard.feed(chunk);
      yield chunk;
    }
    guard.finish();
  }
  // GNU tar as root keeps owners and modes; --numeric-owner ignores the names in the archive
  const tar = spawn('tar', ['-x', '--numeric-owner', '--same-owner', '--same-permissions', '-f', '-', '-C', root], {
    stdio: ['pipe', 'ignore', 'pipe'],
    signal,
  });
  const stderr = collectText(tar.stderr);
  const exited = new Promise<number | null>((resolve) => tar.once('close', resolve));
  tar.once('error', () => {});
  const fed = await pipeline(Readable.from(checked()), tar.stdin as Writable, { signal }).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  // a refused entry, a cut-off upload or a cancelled call: tar stops with whatever it had
  if (fed && (fed instanceof InvalidArgumentError || signal.aborted)) {
    tar.kill('SIGKILL');
    await exited;
    throw fed;
  }
  // otherwise tar's own verdict explains best (a broken pipe only means tar gave up first)
  const code = await exited;
  signal.throwIfAborted();
  if (code !== 0) throw new InvalidArgumentError(`the archive could not be extracted: ${stderr().trim() || `tar exit ${code}`}`);
  if (fed) throw fed;
  return guard;
}

/**
 * mkfs.ext4 -d into a sparse file sized for the files, one inode per entry, and `extraBytes` free. The
 * estimate covers ext4's own metadata (journal, inode tables, directory blocks); should the files still
 * not fit, the size grows and mkfs runs again.
 */
async function packExt4(
  root: string,
  destination: string,
  usedBytes: number,
  entries: number,
  extraBytes: number,
  signal: AbortSignal,
): Promise<void> {
  const inodes = Math.max(1024, Math.ceil(entries * 1.25) + 64);
  let bytes = usedBytes * 1.1 + inodes * 256 + 32 * 1024 * 1024 + extraBytes;
  for (let attempt = 1; ; attempt++) {
    const size = Math.ceil(bytes / (1024 * 1024)) * 1024 * 1024;
    await rm(destination, { force: true });
    await runCommand('truncate', ['-s', String(size), destination], { signal });
    try {
      await runCommand('mkfs.ext4', ['-q', '-F', '-L', 'kindling-root', '-N', String(inodes), '-E', 'root_owner=0:0', '-d', root, destination], { signal });
      return;
    } catch (error) {
      const full = error instanceof CommandFailedError && /Could not allocate|No space|too small/i.test(error.result.stderr);
      if (!full || attempt === MKFS_ATTEMPTS) throw error;
      bytes *= 2;
    }
  }
}
