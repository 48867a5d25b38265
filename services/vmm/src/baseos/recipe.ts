import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** Bump when the builder's own steps change what a recipe produces, so old cache entries are not reused. */
export const BUILDER_VERSION = 1;

export interface MmdebstrapRecipe {
  readonly kind: 'mmdebstrap';
  readonly names: string[];
  readonly os: { readonly id: string; readonly version: string; readonly codename?: string };
  readonly suite: string;
  readonly variant: string;
  readonly mirrors: string[];
  readonly include: string[];
  readonly defaultSize: string;
}

export interface DockerRecipe {
  readonly kind: 'docker';
  readonly names: string[];
  readonly os: { readonly id: string; readonly version: string };
  readonly defaultSize: string;
  /** Kernel package flavour the Dockerfile installs (/boot/vmlinuz-<flavour>), default "virt". */
  readonly kernelFlavour?: string;
}

export type RecipeSpec = MmdebstrapRecipe | DockerRecipe;

export interface BaseOsRecipe {
  /** Recipe path relative to the baseos root, e.g. "debian/bookworm". */
  readonly id: string;
  readonly dir: string;
  readonly spec: RecipeSpec;
  /** Relative paths of every file the recipe consists of, sorted (all of them go into the hash). */
  readonly files: string[];
}

export class RecipeError extends Error {
  override name = 'RecipeError';
}

/** The baseos/ directory of this checkout (recipes live beside the code, not in the cache). */
export const defaultRecipesRoot = (): string =>
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../../baseos');

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
  const files: string[] = [];
  for (const e of entries) {
    const rel = path.posix.join(prefix, e.name);
    if (e.isDirectory()) files.push(...(await listFiles(dir, rel)));
    else if (e.isFile() || e.isSymbolicLink()) files.push(rel);
  }
  return files.sort();
}

/** Loads `<root>/<id>/recipe.json`; id is e.g. "debian/bookworm" or "alpine/3.20". */
export async function loadRecipe(id: string, root = defaultRecipesRoot()): Promise<BaseOsRecipe> {
  const clean = id.replace(/^\/+|\/+$/g, '');
  if (!/^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/.test(clean))
    throw new RecipeError(`base OS recipe "${id}" is not of the form <os>/<version>, e.g. debian/bookworm`);
  const dir = path.join(root, clean);
  let raw: string;
  try {
    raw = await readFile(path.join(dir, 'recipe.json'), 'utf8');
  } catch {
    const known = await listRecipes(root).catch(() => []);
    throw new RecipeError(
      `no base OS recipe at ${dir}/recipe.json; known recipes: ${known.join(', ') || 'none'} (under ${root})`,
    );
  }
  const spec = JSON.parse(raw) as RecipeSpec;
  if (spec.kind !== 'mmdebstrap' && spec.kind !== 'docker')
    throw new RecipeError(`${dir}/recipe.json: kind must be "mmdebstrap" or "docker"`);
  if (!Array.isArray(spec.names) || spec.names.length === 0)
    throw new RecipeError(`${dir}/recipe.json: "names" must list the image names, e.g. ["debian:bookworm"]`);
  return { id: clean, dir, spec, files: await listFiles(dir) };
}

/** Recipe ids under root: every <os>/<version> directory holding a recipe.json. */
export async function listRecipes(root = defaultRecipesRoot()): Promise<string[]> {
  const ids: string[] = [];
  for (const os of await readdir(root, { withFileTypes: true })) {
    if (!os.isDirectory()) continue;
    for (const v of await readdir(path.join(root, os.name), { withFileTypes: true })) {
      if (v.isDirectory() && (await stat(path.join(root, os.name, v.name, 'recipe.json')).catch(() => null)))
        ids.push(`${os.name}/${v.name}`);
    }
  }
  return ids.sort();
}

/**
 * The cache key: every recipe file's path, executable bit and bytes, the image size and the builder
 * version. Same recipe and size → same key → the cached build is reused.
 */
export async function recipeHash(recipe: BaseOsRecipe, sizeBytes: number): Promise<string> {
  const h = createHash('sha256');
  h.update(`kindling-baseos v${BUILDER_VERSION}\0${recipe.id}\0size=${sizeBytes}\0`);
  for (const rel of recipe.files) {
    const full = path.join(recipe.dir, rel);
    const st = await stat(full);
    h.update(`${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`);
    h.update(await readFile(full));
  }
  return h.digest('hex').slice(0, 24);
}

/** "2G", "512M", "1536MiB", "2147483648" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new RecipeError(`size "${text}" is not a size like 2G, 512M or a byte count`);
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Math.round(Number(m[1]) * unit);
  if (bytes < 64 * 1024 ** 2)
    throw new RecipeError(`size ${text} is too small for a base OS image (at least 64M)`);
  return bytes - (bytes % 4096);
}
