/** Base-OS images: build a recipe from baseos/ into the cache, and the kernels that boot it. */
export {
  buildBaseOs,
  ensureDebianBase,
  defaultCacheDir,
  type BaseOsBuild,
  type BaseOsBuildOptions,
  type BaseOsImageJson,
  type BaseOsKernelFiles,
} from './build.ts';
export { loadRecipe, listRecipes, parseSize, recipeHash, defaultRecipesRoot, RecipeError } from './recipe.ts';
export { extractVmlinux, locatePayload, fileIsElf } from './vmlinux.ts';
export { printProgress, type BuildProgressEvent, type ProgressSink, type PhaseTiming } from './progress.ts';
export { DockerUnavailableError } from './docker-build.ts';
