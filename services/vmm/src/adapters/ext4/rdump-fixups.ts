/**
 * What debugfs rdump does not carry over, put back from the image's own listing (`ls -p`, one
 * debugfs run per directory depth). rdump chmods before it chowns, and the chown clears setuid and
 * setgid; it leaves symlinks owned by root with the copy's mtime; it copies every hard link as a
 * file of its own. Device nodes, FIFOs and sockets it skips, and they stay left out.
 */
import { chmod, lchown, link, lstat, lutimes, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { debugfsRequests } from './debugfs.ts';
import type { ImageInode } from './image-paths.ts';

const TYPE_MASK = 0o170000;
const DIRECTORY = 0o040000;
const REGULAR = 0o100000;
const SYMLINK = 0o120000;
const SET_ID_BITS = 0o6000;

interface ListedEntry {
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

/** First host copy of each regular-file inode of the image, shared across the paths of one export. */
export type HardLinks = Map<number, string>;

/** Fixes the rdump copy at `hostPath` of the image's inode `top` (and all below it, for a directory). */
export async function repairRdumpCopy(
  image: string,
  top: ImageInode,
  hostPath: string,
  links: HardLinks,
  signal?: AbortSignal,
): Promise<void> {
  if (top.type === 'regular') {
    await repairFile(hostPath, { ino: top.ino, mode: top.mode, uid: -1, gid: -1, name: '' }, links);
    return;
  }
  if (top.type !== 'directory') return;
  const symlinks: { ino: number; hostPath: string }[] = [];
  let level = [{ ino: top.ino, hostPath }];
  while (level.length > 0) {
    const listings = await debugfsRequests(image, level.map((dir) => `ls -p <${dir.ino}>`), signal);
    const next: typeof level = [];
    for (const [index, dir] of level.entries()) {
      const entries = parseListing(listings[index] ?? '');
      for (const entry of entries) {
        const path = join(dir.hostPath, entry.name);
        const type = entry.mode & TYPE_MASK;
        if (type === DIRECTORY) next.push({ ino: entry.ino, hostPath: path });
        else if (type === REGULAR) await repairFile(path, entry, links, dir.hostPath).catch(unlessUnmatched);
        else if (type === SYMLINK) {
          await lchown(path, entry.uid, entry.gid).catch(unlessUnmatched);
          symlinks.push({ ino: entry.ino, hostPath: path });
        }
      }
    }
    level = next;
  }
  await restoreSymlinkTimes(image, symlinks, signal);
}

async function repairFile(path: string, entry: ListedEntry, links: HardLinks, parent?: string): Promise<void> {
  const first = links.get(entry.ino);
  if (first === undefined) {
    links.set(entry.ino, path);
    // after rdump's chown, so the bits stay
    if (entry.mode & SET_ID_BITS) await chmod(path, entry.mode & 0o7777);
    return;
  }
  // another name of an inode already copied: a hard link again (tar then stores it as one)
  const parentTimes = parent ? await lstat(parent) : undefined;
  await rm(path);
  await link(first, path);
  if (parent && parentTimes) await utimes(parent, parentTimes.atime, parentTimes.mtime);
}

async function restoreSymlinkTimes(
  image: string,
  symlinks: { ino: number; hostPath: string }[],
  signal?: AbortSignal,
): Promise<void> {
  const stats = await debugfsRequests(image, symlinks.map((s) => `stat <${s.ino}>`), signal);
  for (const [index, symlink] of symlinks.entries()) {
    const seconds = /^\s*mtime: 0x([0-9a-f]+)/m.exec(stats[index] ?? '')?.[1];
    if (seconds) await lutimes(symlink.hostPath, parseInt(seconds, 16), parseInt(seconds, 16)).catch(unlessUnmatched);
  }
}

/**
 * A name that is not UTF-8 reads differently in the listing than rdump wrote it: that entry keeps
 * rdump's metadata rather than failing the whole export.
 */
function unlessUnmatched(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}

/** `ls -p` lines: /ino/mode/uid/gid/name/size/ (a name cannot hold "/"). */
function parseListing(text: string): ListedEntry[] {
  const entries: ListedEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split('/');
    if (fields.length !== 8 || fields[0] !== '') continue;
    const [, ino, mode, uid, gid, name] = fields as [string, string, string, string, string, string];
    if (name === '.' || name === '..') continue;
    entries.push({ ino: Number(ino), mode: parseInt(mode, 8), uid: Number(uid), gid: Number(gid), name });
  }
  return entries;
}
