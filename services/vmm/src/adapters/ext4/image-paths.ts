/**
 * Path lookup inside an ext4 image as a chroot would do it. debugfs's own lookup already follows
 * symlinks in the parent directories, absolute ones from the image's root; the last component it
 * takes as is, so a symlink there is followed here (BuildKit's COPY follows its source path).
 */
import { debugfsRequest, quoteDebugfsArg } from './debugfs.ts';

export interface ImageInode {
  readonly ino: number;
  /** debugfs's word for it: "regular", "directory", "symlink", "FIFO", "character", … */
  readonly type: string;
  /** Permission bits with setuid, setgid and sticky. */
  readonly mode: number;
}

// as Linux's MAXSYMLINKS: a longer chain is a loop
const MAX_SYMLINK_HOPS = 40;

// ext2fs_namei's answers for a name that does not resolve (missing, through a file, or looping)
const UNRESOLVED = /File not found by ext2_lookup|inode is not a directory|Too many symbolic links/i;

/** The inode an absolute path names in the image, symlinks followed; undefined when it does not resolve. */
export async function resolveImagePath(image: string, path: string, signal?: AbortSignal): Promise<ImageInode | undefined> {
  let current = path;
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    const { stdout, stderr } = await debugfsRequest(image, `stat ${quoteDebugfsArg(current)}`, signal);
    const text = stdout.toString('utf8');
    const found = /^Inode: (\d+)\s+Type: (\S+)\s+Mode:\s+(\d+)/m.exec(text);
    if (!found) {
      if (UNRESOLVED.test(stderr)) return undefined;
      throw new Error(`debugfs stat ${current} in ${image} failed: ${stderr.trim() || 'no output'}`);
    }
    const inode = { ino: Number(found[1]), type: found[2]!, mode: parseInt(found[3]!, 8) };
    if (inode.type !== 'symlink') return inode;
    const target = (await symlinkTarget(image, inode.ino, text, signal)).replace(/(?<=.)\/+$/, '');
    if (!target) return undefined;
    current = target.startsWith('/') ? target : `${current.slice(0, current.lastIndexOf('/'))}/${target}`;
  }
  return undefined;
}

/** A fast symlink's target is in its stat; a long one's is its data block. */
async function symlinkTarget(image: string, ino: number, stat: string, signal?: AbortSignal): Promise<string> {
  const fast = /^Fast link dest: "(.*)"$/m.exec(stat);
  if (fast) return fast[1]!;
  const { stdout } = await debugfsRequest(image, `cat <${ino}>`, signal);
  return stdout.toString('utf8');
}
