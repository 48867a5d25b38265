import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PhaseClock } from './progress.ts';
import type { BaseOsRecipe, MmdebstrapRecipe } from './recipe.ts';
import { packTreeAsExt4 } from './ext4-pack.ts';
import { runCommand } from './run-command.ts';
import { extractVmlinux } from './vmlinux.ts';

export interface BuiltTree {
  readonly rootfs: string;
  readonly kernelVersion: string;
  readonly payloadCompression: string;
}

/** Kernel version of the single kernel installed in a tree's /boot (from vmlinuz-<version>). */
async function installedKernel(tree: string): Promise<string> {
  const versions = (await readdir(path.join(tree, 'boot')))
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length));
  if (versions.length !== 1)
    throw new Error(
      `expected one kernel in ${tree}/boot, found ${versions.length}: does the recipe include a linux-image package?`,
    );
  return versions[0]!;
}

/**
 * Builds a Debian rootfs with mmdebstrap (no Docker), copies its kernel out, and packs the tree into an
 * ext4 image with `mkfs.ext4 -d` (no mount, no loop device). workDir must be empty and is left holding
 * rootfs.ext4 and kernel/.
 */
export async function buildMmdebstrapImage(
  recipe: BaseOsRecipe,
  spec: MmdebstrapRecipe,
  workDir: string,
  sizeBytes: number,
  clock: PhaseClock,
  signal?: AbortSignal,
): Promise<BuiltTree> {
  const tree = path.join(workDir, 'tree');
  const kernelDir = path.join(workDir, 'kernel');
  const rootfs = path.join(workDir, 'rootfs.ext4');
  const hooks = path.join(recipe.dir, 'hooks');
  const overlay = path.join(recipe.dir, 'overlay');
  const q = (p: string): string => `'${p.replaceAll("'", "'\\''")}'`;

  if (process.getuid?.() !== 0)
    throw new Error(
      `${recipe.id} is built with mmdebstrap --mode=root, which needs root (file ownership in the image): run as root`,
    );
  await clock.phase('mmdebstrap', () =>
    runCommand(
      'mmdebstrap',
      [
        '--mode=root',
        `--variant=${spec.variant}`,
        `--include=${spec.include.join(',')}`,
        `--essential-hook=sh ${q(path.join(hooks, 'essential.sh'))} "$1"`,
        `--customize-hook=sh ${q(path.join(hooks, 'customize.sh'))} "$1" ${q(overlay)}`,
        spec.suite,
        tree,
        ...spec.mirrors,
      ],
      { onLine: (line) => clock.log(line), signal, env: { ...process.env, LC_ALL: 'C.UTF-8' } },
    ).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(
          'mmdebstrap is not installed: apt-get install -y mmdebstrap (the Debian base OS needs it)',
        );
      throw e;
    }),
  );

  const kernelVersion = await installedKernel(tree);
  const payload = await clock.phase('kernel', async () => {
    await mkdir(kernelDir, { recursive: true });
    await copyFile(path.join(tree, 'boot', `vmlinuz-${kernelVersion}`), path.join(kernelDir, 'vmlinuz'));
    await copyFile(
      path.join(tree, 'boot', `initrd.img-${kernelVersion}`),
      path.join(kernelDir, 'initrd.img'),
    );
    await copyFile(path.join(tree, 'boot', `config-${kernelVersion}`), path.join(kernelDir, 'config'));
    await writeFile(path.join(kernelDir, 'version'), `${kernelVersion}\n`);
    return extractVmlinux(path.join(kernelDir, 'vmlinuz'), path.join(kernelDir, 'vmlinux'));
  });

  await packTreeAsExt4(tree, rootfs, sizeBytes, clock, signal);
  return { rootfs, kernelVersion, payloadCompression: payload.compression };
}
