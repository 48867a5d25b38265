/**
 * The inputs of a step that the plan cannot know (its keys stay provisional): the digests of the
 * context files a COPY/ADD or bind mount reads, what a URL or git ref resolves to now, and the
 * effective keys of the stages and digests of the images copied from. Folded into the step's
 * effective cache key, so a changed file reruns the step that copies it, and every step after.
 */
import type { FileEntry } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { PlannedStep } from '../domain/plan.ts';
import type { BuildContextSource } from '../ports/build-services.ts';

export interface CacheInputSources {
  readonly context: BuildContextSource;
  readonly contextId: string;
  /** Effective key of each stage built (or found cached) so far. */
  readonly stageKeys: ReadonlyMap<number, string>;
  /** Content digest of a vmm image, by the reference a Dockerfile gives. */
  imageDigest(reference: string): string;
  /** Stage index of a mount's `from=` (a stage name or index), undefined for an image. */
  stageOf(from: string): number | undefined;
}

function describeFile(file: FileEntry): string {
  return [file.path, file.type, file.mode.toString(8), file.uid, file.gid, file.size, file.digest, file.linkTarget, file.matchRoot].join('|');
}

async function contextListing(
  sources: CacheInputSources,
  patterns: string[],
  excludes: string[],
  parents: boolean,
  signal: AbortSignal,
): Promise<string[]> {
  if (patterns.length === 0 || sources.contextId === '') return [];
  const listing = await sources.context.listFiles(sources.contextId, patterns, excludes, signal, { parents });
  return listing.sources.flatMap((source) => [`source:${source.pattern}`, ...source.files.map(describeFile)]);
}

function originInput(sources: CacheInputSources, from: { kind: 'stage'; stageIndex: number } | { kind: 'image'; reference: string }): string {
  return from.kind === 'stage' ? `stage:${sources.stageKeys.get(from.stageIndex) ?? ''}` : `image:${sources.imageDigest(from.reference)}`;
}

export async function runtimeInputs(step: PlannedStep, sources: CacheInputSources, signal: AbortSignal): Promise<string[]> {
  const action = step.action;
  if (action.kind === 'copy') {
    const inputs: string[] = [];
    if (action.origin.kind === 'context') inputs.push(...(await contextListing(sources, action.sources, action.exclude, action.parents, signal)));
    else inputs.push(originInput(sources, action.origin));
    for (const { url, checksum } of action.urls) {
      inputs.push(`url:${url}:${checksum ?? (await sources.context.fetchUrl(url, '', signal)).digest}`);
    }
    for (const git of action.git) {
      const resolved = await sources.context.resolve({ source: { $case: 'gitUrl', value: git.url }, dockerfilePath: '' }, signal);
      inputs.push(`git:${git.url}:${resolved.gitCommit}`);
    }
    return inputs;
  }
  if (action.kind === 'run') {
    const inputs: string[] = [];
    for (const mount of action.mounts) {
      if (mount.type !== 'bind') continue;
      if (mount.from === undefined) inputs.push(...(await contextListing(sources, [mount.source || '.'], [], false, signal)));
      else {
        const stage = sources.stageOf(mount.from);
        inputs.push(stage === undefined ? `image:${sources.imageDigest(mount.from)}` : `stage:${sources.stageKeys.get(stage) ?? ''}`);
      }
    }
    return inputs;
  }
  return [];
}

/** The stages a step reads files from (COPY --from, RUN --mount from=): it waits for each to be built. */
export function stagesRead(step: PlannedStep, stageOf: (from: string) => number | undefined): number[] {
  const action = step.action;
  if (action.kind === 'copy') return action.origin.kind === 'stage' ? [action.origin.stageIndex] : [];
  if (action.kind !== 'run') return [];
  return action.mounts.flatMap((mount) => {
    const stage = mount.type === 'bind' && mount.from !== undefined ? stageOf(mount.from) : undefined;
    return stage === undefined ? [] : [stage];
  });
}
