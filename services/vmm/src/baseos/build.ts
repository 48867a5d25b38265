import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildDockerImage } from './docker-build.ts';
import { buildMmdebstrapImage } from './debian-build.ts';
import { PhaseClock, printProgress, type PhaseTiming, type ProgressSink } from './progress.ts';
import { loadRecipe, parseSize, recipeHash, type BaseOsRecipe } from './recipe.ts';
import { withBuildLock } from './build-lock.ts';
import { removeWorkDir } from './work-dir.ts';
import { BLOCK_LIST_ALGORITHM, blockListDigest } from '../adapters/fs/block-list-digest.ts';
import { writeFileAtomic } from '../adapters/fs/atomic-file.ts';
import { emptyImageMetadata, type ImageMetadata } from '../domain/image.ts';

export interface BaseOsBuildOptions {
  /** Root of kindling's cache; builds land in <cacheDir>/baseos/<hash>/. */
  readonly cacheDir?: string;
  /** ext4 image size, e.g. "2G" (default: the recipe's defaultSize). */
  readonly size?: string;
  /** Also copy the result (sparse) into this directory. */
  readonly outDir?: string;
  /** Where recipes live (default: this checkout's baseos/). */
  readonly recipesRoot?: string;
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
}

export interface BaseOsKernelFiles {
  readonly id: string;
  readonly version: string;
  /** Compressed bzImage, for qemu. */
  readonly vmlinuz: string;
  readonly initrd: string;
  /** Uncompressed ELF, for Firecracker. */
  readonly vmlinux: string;
  readonly config: string;
}

/** image.json of a base OS build: the vmm's ImageRecord fields plus where it came from and its kernel. */
export interface BaseOsImageJson {
  readonly name: string;
  readonly tag: string;
  /** Every name:tag the image registers as, e.g. ["debian:bookworm", "debian:12"]. */
  readonly names: string[];
  readonly digest: string;
  readonly sizeBytes: number;
  readonly created: string;
  readonly parent: string;
  readonly base: true;
  readonly metadata: ImageMetadata;
  readonly defaultKernelId: string;
  readonly os: { readonly id: string; readonly version: string; readonly codename?: string };
  readonly recipe: { readonly id: string; readonly hash: string };
  /** Kernel files relative to this image.json's directory. */
  readonly kernel: { readonly id: string; readonly version: string; readonly files: Record<string, string> };
}

export interface BaseOsBuild {
  readonly dir: string;
  readonly hash: string;
  readonly rootfs: string;
  readonly imageJsonPath: string;
  readonly imageJson: BaseOsImageJson;
  readonly kernel: BaseOsKernelFiles;
  /** True when the cached build was reused. */
  readonly cached: boolean;
  readonly timings: PhaseTiming[];
}

export const defaultCacheDir = (): string => process.env.KINDLING_CACHE_DIR ?? '/var/cache/kindling';

function kernelFiles(dir: string, id: string, version: string): BaseOsKernelFiles {
  const k = (f: string): string => path.join(dir, 'kernel', f);
  return {
    id,
    version,
    vmlinuz: k('vmlinuz'),
    initrd: k('initrd.img'),
    vmlinux: k('vmlinux'),
    config: k('config'),
  };
}

async function readBuild(
  dir: string,
  hash: string,
  cached: boolean,
  timings: PhaseTiming[],
): Promise<BaseOsBuild> {
  const imageJsonPath = path.join(dir, 'image.json');
  let imageJson = JSON.parse(await readFile(imageJsonPath, 'utf8')) as BaseOsImageJson;
  if (!imageJson.digest.startsWith(`${BLOCK_LIST_ALGORITHM}:`)) {
    // Cached by an older kindling (whole-file sha256): re-address it the way images are addressed now.
    imageJson = { ...imageJson, digest: await blockListDigest(path.join(dir, 'rootfs.ext4')) };
    await writeFileAtomic(imageJsonPath, `${JSON.stringify(imageJson, null, 2)}\n`);
  }
  return {
    dir,
    hash,
    rootfs: path.join(dir, 'rootfs.ext4'),
    imageJsonPath,
    imageJson,
    kernel: kernelFiles(dir, imageJson.kernel.id, imageJson.kernel.version),
    cached,
    timings,
  };
}

async function buildInto(
  recipe: BaseOsRecipe,
  hash: string,
  workDir: string,
  sizeBytes: number,
  clock: PhaseClock,
  signal?: AbortSignal,
): Promise<void> {
  const spec = recipe.spec;
  const built =
    spec.kind === 'mmdebstrap'
      ? await buildMmdebstrapImage(recipe, spec, workDir, sizeBytes, clock, signal)
      : await buildDockerImage(recipe, spec, workDir, sizeBytes, clock, signal);
  const digest = await clock.phase('digest', () => blockListDigest(built.rootfs));
  const [first] = spec.names;
  const [name, tag] = (first ?? 'base:latest').split(':') as [string, string];
  const kernelId = `${spec.os.id}-${built.kernelVersion}`;
  const imageJson: BaseOsImageJson = {
    name,
    tag,
    names: spec.names,
    digest,
    sizeBytes,
    created: new Date().toISOString(),
    parent: '',
    base: true,
    metadata: emptyImageMetadata(),
    defaultKernelId: kernelId,
    os: spec.os,
    recipe: { id: recipe.id, hash },
    kernel: {
      id: kernelId,
      version: built.kernelVersion,
      files: {
        vmlinuz: 'kernel/vmlinuz',
        initrd: 'kernel/initrd.img',
        vmlinux: 'kernel/vmlinux',
        config: 'kernel/config',
      },
    },
  };
  await writeFile(path.join(workDir, 'image.json'), JSON.stringify(imageJson, null, 2) + '\n');
}

/**
 * Builds the base OS of a recipe ("debian/bookworm") into the cache, or returns the cached build when the
 * recipe's files and the size are unchanged. Builds run in a temp dir renamed into place, so a killed
 * build leaves no half-written cache entry, and concurrent callers wait for one another.
 */
export async function buildBaseOs(recipeId: string, opts: BaseOsBuildOptions = {}): Promise<BaseOsBuild> {
  const sink = opts.progress ?? printProgress();
  const clock = new PhaseClock(sink);
  const recipe = await loadRecipe(recipeId, opts.recipesRoot);
  const sizeBytes = parseSize(opts.size ?? recipe.spec.defaultSize);
  const hash = await recipeHash(recipe, sizeBytes);
  const root = path.join(opts.cacheDir ?? defaultCacheDir(), 'baseos');
  const dir = path.join(root, hash);
  await mkdir(root, { recursive: true });

  const exists = async (): Promise<boolean> =>
    (await stat(path.join(dir, 'image.json')).catch(() => null)) !== null;
  let cached = true;
  if (!(await exists())) {
    await withBuildLock(
      path.join(root, `${hash}.lock`),
      (line) => clock.log(line),
      async () => {
        if (await exists()) return; // another process finished it while we waited
        cached = false;
        const workDir = path.join(root, `.build-${hash}-${process.pid}`);
        // Holding the lock, any other work dir of this hash is what a killed build left behind.
        for (const stale of (await readdir(root)).filter((f) => f.startsWith(`.build-${hash}-`)))
          await removeWorkDir(path.join(root, stale));
        await mkdir(workDir, { recursive: true });
        try {
          await buildInto(recipe, hash, workDir, sizeBytes, clock, opts.signal);
          await rename(workDir, dir);
        } finally {
          await removeWorkDir(workDir);
        }
      },
    );
  }
  const build = await readBuild(dir, hash, cached, clock.timings);
  if (cached) clock.log(`I: ${recipe.id} unchanged: reusing ${dir}`);
  if (opts.outDir) await clock.phase('copy to --out', () => copyBuild(build, opts.outDir!));
  return build;
}

/** Copies a build's files into dir (sparse, reflinked where the filesystem can). */
async function copyBuild(build: BaseOsBuild, dir: string): Promise<void> {
  await mkdir(path.join(dir, 'kernel'), { recursive: true });
  const { runCommand } = await import('./run-command.ts');
  await runCommand('cp', ['--sparse=always', '--reflink=auto', build.rootfs, path.join(dir, 'rootfs.ext4')]);
  await cp(build.imageJsonPath, path.join(dir, 'image.json'));
  await cp(path.join(build.dir, 'kernel'), path.join(dir, 'kernel'), { recursive: true });
}

/** The Debian bookworm base, built once and then reused from the cache (tests call this once per run). */
export const ensureDebianBase = (opts: BaseOsBuildOptions = {}): Promise<BaseOsBuild> =>
  buildBaseOs('debian/bookworm', opts);
