/**
 * The PlanBuild use case: plan a Dockerfile against the images the catalog lists. It never needs a
 * VM host: when the catalog cannot be read, bases are planned as unresolved with a warning.
 */
import type { ImageCatalog } from '../ports/image-catalog.ts';
import { isSupportedPlatform } from './build-args.ts';
import type { CatalogImage } from './catalog.ts';
import type { PlanOutcome } from './plan.ts';
import { planDockerfile } from './planner.ts';

export interface PlanBuildInput {
  dockerfile: string;
  buildArgs: Readonly<Record<string, string>>;
  target: string;
  /** '' or linux/amd64 (in any spelling containerd normalizes to it): the only platform kindling builds. */
  platform: string;
}

export const MAX_DOCKERFILE_BYTES = 1024 * 1024;

export async function planBuild(input: PlanBuildInput, catalog: ImageCatalog, signal?: AbortSignal): Promise<PlanOutcome> {
  const size = Buffer.byteLength(input.dockerfile);
  if (size > MAX_DOCKERFILE_BYTES) {
    return { ok: false, diagnostics: [{ line: 0, column: 0, instruction: '', severity: 'error', rule: 'DockerfileTooLarge', message: `the Dockerfile is ${size} bytes; the limit is ${MAX_DOCKERFILE_BYTES} bytes` }] };
  }
  if (input.platform !== '' && !isSupportedPlatform(input.platform)) {
    return { ok: false, diagnostics: [{ line: 0, column: 0, instruction: '', severity: 'error', rule: 'PlatformNotSupported', message: `platform "${input.platform}" is not supported: kindling builds linux/amd64 microVMs only (leave platform empty)` }] };
  }
  // Undefined when the catalog cannot be read: bases are then "not checked", not "missing from it".
  let images: CatalogImage[] | undefined;
  let catalogProblem: string | undefined;
  try {
    images = await catalog.listImages(signal);
  } catch (err) {
    catalogProblem = (err as Error).message;
  }
  const outcome = planDockerfile(input.dockerfile, { buildArgs: input.buildArgs, target: input.target, ...(images ? { images } : {}), mode: 'plan' });
  if (catalogProblem !== undefined) {
    outcome.diagnostics.push({ line: 0, column: 0, instruction: '', severity: 'warning', rule: 'ImageCatalogUnavailable', message: `the image catalog could not be read (${catalogProblem}); every base image is planned as unresolved` });
  }
  return outcome;
}
