import { readFile, rm } from 'node:fs/promises';
import { runCommand } from './run-command.ts';

/** Mount points at or below dir, deepest first (from /proc/mounts, whose octal escapes are decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/mounts', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return table
    .split('\n')
    .map((line) =>
      (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      ),
    )
    .filter((mount) => mount === dir || mount.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes a build work dir. A killed mmdebstrap leaves proc, sys, devpts and shm mounted in its tree:
 * those are detached first, so the removal never reaches into a mounted filesystem.
 */
export async function removeWorkDir(dir: string): Promise<void> {
  for (const mount of await mountsUnder(dir)) await runCommand('umount', ['-l', mount]);
  if ((await mountsUnder(dir)).length > 0)
    throw new Error(`${dir} still has filesystems mounted below it; not removing it`);
  await rm(dir, { recursive: true, force: true });
}
