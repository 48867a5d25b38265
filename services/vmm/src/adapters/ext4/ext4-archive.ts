/**
 * Files in and out of ext4 images as tar archives, never mounting anything: debugfs rdump copies the
 * asked paths out (owners, modes and symlinks kept, as root) into a private directory that tar then
 * streams; an archive is extracted into a private directory that mkfs.ext4 -d turns into an image.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '../../domain/errors.ts';
import { runCommand } from '../exec/run-command.ts';
import { runDebugfs } from './debugfs.ts';

const DEFAULT_EXTRA_BYTES = 64 * 1024 * 1024;

/** A tar of `paths` (absolute, in the image); entries are named by the path without its leading "/". */
export async function* exportTar(image: string, paths: string[], signal: AbortSignal): AsyncGenerator<Buffer> {
  const scratch = await mkdtemp(join(tmpdir(), 'kindling-export-'));
  try {
    const script: string[] = [];
    for (const path of paths) {
      const parent = join(scratch, dirname(path));
      await mkdir(parent, { recursive: true });
      script.push(`rdump "${path}" "${parent}"`);
    }
    if (script.length > 0) await runDebugfs(image, `${script.join('\n')}\n`, { write: false });
    const names = paths.map((p) => p.replace(/^\/+/, ''));
    const tar = spawn('tar', ['-c', '--numeric-owner', '-C', scratch, '--', ...names], { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stderr = '';
    tar.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tar.once('close', resolve));
    tar.once('error', () => {});
    for await (const chunk of tar.stdout as AsyncIterable<Buffer>) yield chunk;
    const code = await exited;
    if (code !== 0) throw new Error(`tar of ${paths.join(', ')} from ${image} failed: ${stderr.trim() || `exit ${code}`}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Makes `destination` an ext4 image holding the archive's files (owners and modes as archived). */
export async function ext4FromTar(archive: AsyncIterable<Uint8Array>, destination: string, extraBytes: number, signal: AbortSignal): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'kindling-archive-'));
  try {
    const root = join(scratch, 'root');
    await mkdir(root);
    // GNU tar as root keeps numeric owners and modes, strips leading "/" and skips ".." members
    const tar = spawn('tar', ['-x', '--numeric-owner', '--same-permissions', '--no-overwrite-dir', '-C', root], { stdio: ['pipe', 'ignore', 'pipe'], signal });
    let stderr = '';
    tar.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tar.once('close', resolve));
    tar.once('error', () => {});
    await pipeline(Readable.from(archive), tar.stdin).catch((error: unknown) => {
      tar.kill();
      throw error;
    });
    const code = await exited;
    if (code !== 0) throw new InvalidArgumentError(`the archive could not be extracted: ${stderr.trim() || `tar exit ${code}`}`);
    const { stdout } = await runCommand('du', ['-s', '-B1', root]);
    const used = Number(stdout.toString().split(/\s/)[0] ?? 0);
    // room for ext4's own metadata (inode tables, journal) beside the files and the asked free space
    const bytes = Math.ceil((used * 1.15 + (extraBytes || DEFAULT_EXTRA_BYTES) + 16 * 1024 * 1024) / 4096) * 4096;
    await rm(destination, { force: true });
    await runCommand('truncate', ['-s', String(bytes), destination]);
    await runCommand('mkfs.ext4', ['-q', '-F', '-E', 'root_owner=0:0', '-d', root, destination]);
  } catch (error) {
    await truncate(destination, 0).catch(() => {});
    throw error;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
