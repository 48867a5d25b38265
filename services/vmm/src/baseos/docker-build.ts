import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuiltTree } from './debian-build.ts';
import type { PhaseClock } from './progress.ts';
import type { BaseOsRecipe, DockerRecipe } from './recipe.ts';
import { packTreeAsExt4 } from './ext4-pack.ts';
import { runCommand } from './run-command.ts';
import { extractVmlinux } from './vmlinux.ts';

/** The recipe needs a Docker engine and none answers: say which recipe, what was tried, and the way out. */
export class DockerUnavailableError extends Error {
  override name = 'DockerUnavailableError';
}

async function requireDockerEngine(recipe: BaseOsRecipe): Promise<void> {
  try {
    await runCommand('docker', ['version', '--format', '{{.Server.Version}}']);
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'the docker command is not installed'
        : `no Docker engine answers (${(e as Error).message.split('\n').slice(-1)[0]?.trim()})`;
    throw new DockerUnavailableError(
      `base OS recipe ${recipe.id} is built with Docker, and ${why}: install and start a Docker engine ` +
        `(e.g. apt-get install docker.io && systemctl start docker), or build debian/bookworm, which needs no Docker`,
    );
  }
}

/**
 * Builds a base OS the way firebuild's seed does: `docker build` the recipe's Dockerfile, export the
 * container's filesystem, and pack it with `mkfs.ext4 -d`. The image installs its own kernel
 * (/boot/vmlinuz-<flavour>, /boot/initramfs-<flavour>), which is copied out like Debian's.
 */
export async function buildDockerImage(
  recipe: BaseOsRecipe,
  spec: DockerRecipe,
  workDir: string,
  sizeBytes: number,
  clock: PhaseClock,
  signal?: AbortSignal,
): Promise<BuiltTree> {
  await requireDockerEngine(recipe);
  const tag = `kindling-baseos/${recipe.id.replace('/', '-')}:build`;
  const tree = path.join(workDir, 'tree');
  const rootfs = path.join(workDir, 'rootfs.ext4');
  const kernelDir = path.join(workDir, 'kernel');
  const onLine = (line: string): void => clock.log(line);
  await clock.phase('docker build', () =>
    runCommand('docker', ['build', '--pull', '-t', tag, recipe.dir], { onLine, signal }),
  );
  const container = (await runCommand('docker', ['create', tag, '/bin/true'])).stdout.toString().trim();
  try {
    await mkdir(tree, { recursive: true });
    await clock.phase('docker export', () =>
      runCommand(
        'sh',
        ['-c', 'docker export "$1" | tar -x -C "$2" --numeric-owner', 'export', container, tree],
        { signal },
      ),
    );
  } finally {
    await runCommand('docker', ['rm', '-f', container]).catch(() => undefined);
  }
  // Docker bind-mounts these over the container's own; give the VM real ones.
  await writeFile(path.join(tree, 'etc/hostname'), 'kindling\n');
  await writeFile(path.join(tree, 'etc/resolv.conf'), '');

  const boot = await readdir(path.join(tree, 'boot'));
  const flavour = spec.kernelFlavour ?? 'virt';
  if (!boot.includes(`vmlinuz-${flavour}`))
    throw new Error(
      `${recipe.id}: the image has no /boot/vmlinuz-${flavour}; install linux-${flavour} in its Dockerfile`,
    );
  const version = (await runCommand('sh', ['-c', `ls "${tree}/lib/modules" | head -n1`])).stdout
    .toString()
    .trim();
  const payload = await clock.phase('kernel', async () => {
    await mkdir(kernelDir, { recursive: true });
    await copyFile(path.join(tree, 'boot', `vmlinuz-${flavour}`), path.join(kernelDir, 'vmlinuz'));
    await copyFile(path.join(tree, 'boot', `initramfs-${flavour}`), path.join(kernelDir, 'initrd.img'));
    const config = boot.find((f) => f.startsWith('config-'));
    if (config) await copyFile(path.join(tree, 'boot', config), path.join(kernelDir, 'config'));
    else await writeFile(path.join(kernelDir, 'config'), '');
    await writeFile(path.join(kernelDir, 'version'), `${version}\n`);
    return extractVmlinux(path.join(kernelDir, 'vmlinuz'), path.join(kernelDir, 'vmlinux'));
  });
  await packTreeAsExt4(tree, rootfs, sizeBytes, clock, signal);
  return { rootfs, kernelVersion: version, payloadCompression: payload.compression };
}
