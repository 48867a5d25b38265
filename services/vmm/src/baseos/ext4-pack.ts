import type { PhaseClock } from './progress.ts';
import { runCommand } from './run-command.ts';
import { removeWorkDir } from './work-dir.ts';

/**
 * Packs a root tree into a sparse ext4 image of sizeBytes with `mkfs.ext4 -d` (no mount, no loop
 * device), then removes the tree. Both base-OS builders end this way.
 */
export async function packTreeAsExt4(
  tree: string,
  rootfs: string,
  sizeBytes: number,
  clock: PhaseClock,
  signal?: AbortSignal,
): Promise<void> {
  await clock.phase('mkfs.ext4', async () => {
    await runCommand('truncate', ['-s', String(sizeBytes), rootfs]);
    await runCommand(
      'mkfs.ext4',
      ['-q', '-F', '-L', 'kindling-root', '-d', tree, rootfs],
      signal ? { signal } : {},
    );
  });
  await clock.phase('cleanup', () => removeWorkDir(tree));
}
