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

type GitSource = Extract<StepAction, { kind: 'copy' }>['git'][number];

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
