/**
 * Files of a committed stage or image as a fetcher context: the vmm reads the paths a COPY --from
 * needs out of the image's rootfs (e2fsprogs, no boot) as a tar, which streams straight into the
 * fetcher as an upload; the context's listing and blobs then serve the copy like any other.
 */
import type { CopySource } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { FailedPreconditionError } from '@kindling/runtime';
import type { PlannedStep, StepAction } from '../domain/plan.ts';
import type { BuildContextSource, BuildVmHost } from '../ports/build-services.ts';

/** The part of a source before its first wildcard: what must be exported for the pattern to match. */
export function literalPrefix(pattern: string): string {
  const parts = pattern.replace(/^\/+/, '').split('/');
  const literal: string[] = [];
  for (const part of parts) {
    if (/[*?[\\]/.test(part)) break;
    literal.push(part);
  }
  return `/${literal.filter((p) => p !== '' && p !== '.').join('/')}`;
}

export async function imageFilesContext(
  services: { readonly vmHost: BuildVmHost; readonly context: BuildContextSource },
  image: string,
  sources: readonly string[],
  signal: AbortSignal,
): Promise<string> {
  const prefixes = [...new Set(sources.map(literalPrefix))];
  // a wildcard below a missing directory matches nothing, as in BuildKit; a literal path must exist
  const allowMissing = sources.every((s) => literalPrefix(s) !== `/${s.replace(/^\/+/, '')}`.replace(/\/$/, ''));
  const archive = services.vmHost.exportImageFiles(image, prefixes, signal, { allowMissing });
  const { uploadId } = await services.context.upload(`${image.replace(/[^a-z0-9.-]+/gi, '_')}.tar`, archive, signal);
  const resolved = await services.context.resolve({ source: { $case: 'uploadId', value: uploadId }, dockerfilePath: '' }, signal);
  return resolved.contextId;
}

type CopyAction = Extract<StepAction, { kind: 'copy' }>;
type GitSource = CopyAction['git'][number];

export interface CopyOriginServices {
  readonly vmHost: BuildVmHost;
  readonly context: BuildContextSource;
  /** The build's context ('' for a Dockerfile-only build). */
  readonly contextId: string;
  readonly stageImages: ReadonlyMap<number, string>;
  /** The vmm image a --from=<image> names. */
  imageNamed(reference: string): string;
}

/**
 * Where a COPY/ADD lists its sources: the build context, or the files of its --from stage or image
 * exported and uploaded (fromImage: owners are kept, as BuildKit keeps them).
 */
export async function copySourceContext(
  services: CopyOriginServices,
  step: PlannedStep,
  action: CopyAction,
  signal: AbortSignal,
): Promise<{ contextId: string; patterns: string[]; fromImage: boolean }> {
  const origin = action.origin;
  if (origin.kind === 'context') {
    if (services.contextId === '') {
      throw new FailedPreconditionError(
        `line ${step.line}: ${action.instruction} needs a build context, but this build has only a Dockerfile; build from a directory, URL or git repository`,
      );
    }
    return { contextId: services.contextId, patterns: action.sources, fromImage: false };
  }
  const image = origin.kind === 'stage' ? services.stageImages.get(origin.stageIndex) : services.imageNamed(origin.reference);
  if (image === undefined) throw new FailedPreconditionError(`line ${step.line}: stage ${origin.kind === 'stage' ? origin.stageIndex : ''} that ${action.instruction} --from names was not built`);
  const contextId = await imageFilesContext(services, image, action.sources, signal);
  // the export names entries by their path without the leading "/"
  return { contextId, patterns: action.sources.map((s) => s.replace(/^\/+/, '') || '.'), fromImage: true };
}

/** ADD <git url>: the repository's tree at the ref (without .git), checked against --checksum (the commit). */
export async function gitSources(context: BuildContextSource, step: PlannedStep, git: GitSource, signal: AbortSignal): Promise<{ contextId: string; sources: CopySource[] }> {
  if (git.keepGitDir) throw new FailedPreconditionError(`line ${step.line}: ADD --keep-git-dir=true is not supported by kindling yet: the fetcher checks out the tree without .git`);
  const resolved = await context.resolve({ source: { $case: 'gitUrl', value: git.url }, dockerfilePath: '' }, signal);
  if (git.checksum !== undefined && git.checksum !== resolved.gitCommit) {
    throw new FailedPreconditionError(`line ${step.line}: ADD --checksum=${git.checksum}: ${git.url} resolves to commit ${resolved.gitCommit}`);
  }
  const listed = await context.listFiles(resolved.contextId, ['.'], [], signal);
  return { contextId: resolved.contextId, sources: listed.sources.filter((s) => s.files.length > 0).map((s) => ({ pattern: git.url, files: s.files })) };
}
