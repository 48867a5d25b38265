/** One needed stage: its base (scratch, an earlier stage or a catalog image), ONBUILD triggers, then its steps. */
import { baseCacheKey } from './cache-key.ts';
import { describeCatalog, findCatalogImage, formatImageReference, parseImageReference, referenceProblem, type CatalogImage } from './catalog.ts';
import { commandError, type Diagnostics } from './diagnostics.ts';
import { CommandError, parseCommand } from './instructions.ts';
import { readDockerfile } from './instruction-source.ts';
import type { ImageDependency, ImageMetadata, PlannedStage, StageBase, StepCacheKey } from './plan.ts';
import { emptyImage, StageBuilder, type DispatchEnvironment } from './stage-dispatch.ts';
import type { Stage } from './stage-graph.ts';

export interface StageOutcome {
  stage: PlannedStage;
  stateEnv: ReadonlyMap<string, string>;
  builder: StageBuilder;
}

function resolveBase(stage: Stage, planned: ReadonlyMap<number, StageOutcome>, images: readonly CatalogImage[] | undefined, mode: 'plan' | 'build', diags: Diagnostics): { base: StageBase; image: ImageMetadata; stateEnv?: ReadonlyMap<string, string>; key: StepCacheKey } {
  const platform = 'linux/amd64';
  if (stage.baseStage !== undefined) {
    const parent = planned.get(stage.baseStage) as StageOutcome;
    return { base: { kind: 'stage', stageIndex: stage.baseStage }, image: parent.stage.image, stateEnv: parent.stateEnv, key: { digest: parent.stage.cacheKey, parent: '', complete: parent.builder.key.complete } };
  }
  if (stage.baseName === 'scratch') return { base: { kind: 'scratch' }, image: emptyImage(), key: baseCacheKey('scratch', platform) };
  const ref = parseImageReference(stage.baseName);
  const found = images ? findCatalogImage(images, ref) : undefined;
  // A blank or malformed reference is already an error at this FROM: a catalog warning would only add noise.
  const invalid = stage.baseName === '' || referenceProblem(stage.baseName) !== undefined;
  if (!images || invalid) {
    if (!invalid) diags.warn(stage.from.src, 'UnresolvedBaseImage', `FROM ${stage.baseName}: not checked against an image catalog (none was available to the planner); the base is unresolved`);
    const base: StageBase = { kind: 'image', reference: stage.baseName, name: ref.name, tag: ref.tag, resolved: false };
    if (ref.digest !== undefined) base.digest = ref.digest;
    return { base, image: emptyImage(), key: baseCacheKey(`unresolved:${stage.baseName}`, platform) };
  }
  if (!found) {
    const message = `FROM ${stage.baseName}: no image ${formatImageReference(ref.name, ref.tag, ref)} in the image catalog; available: ${describeCatalog(images)}`;
    if (mode === 'build') diags.error(stage.from.src, 'UnknownBaseImage', message);
    else diags.warn(stage.from.src, 'UnresolvedBaseImage', `${message} (planned with an unresolved base; a build would fail here)`);
    const base: StageBase = { kind: 'image', reference: stage.baseName, name: ref.name, tag: ref.tag, resolved: false };
    if (ref.digest !== undefined) base.digest = ref.digest;
    return { base, image: emptyImage(), key: baseCacheKey(`unresolved:${stage.baseName}`, platform) };
  }
  const base: StageBase = { kind: 'image', reference: stage.baseName, name: found.name, tag: found.tag, resolved: true, imageKind: found.kind };
  if (found.digest !== undefined) base.digest = found.digest;
  return { base, image: found.metadata ?? emptyImage(), key: baseCacheKey(found.digest ?? `${found.name}:${found.tag}`, platform) };
}

export function planStage(stage: Stage, planned: ReadonlyMap<number, StageOutcome>, environment: DispatchEnvironment, images: readonly CatalogImage[] | undefined, mode: 'plan' | 'build', diags: Diagnostics): StageOutcome {
  const resolved = resolveBase(stage, planned, images, mode, diags);
  const parent = stage.baseStage !== undefined ? planned.get(stage.baseStage) : undefined;
  const builder = new StageBuilder(environment, resolved.image, resolved.stateEnv, resolved.key, parent?.builder.workdirSet ?? false);
  const baseKey = resolved.key.digest;
  // Docker runs the base image's ONBUILD triggers first, as if they were written after FROM.
  for (const trigger of resolved.image.onBuild) {
    const src = stage.from.src;
    try {
      const triggerFile = readDockerfile(trigger);
      const inner = triggerFile.instructions[0];
      if (!inner || triggerFile.problems.length > 0) throw new CommandError(triggerFile.problems[0]?.message ?? 'empty trigger');
      const command = parseCommand({ ...inner, line: src.line, column: src.column, endLine: src.endLine, segments: [] }, environment.escapeToken);
      builder.dispatch(command, [], true);
    } catch (err) {
      if (err instanceof CommandError) diags.error(src, 'OnbuildTriggerFailed', `FROM ${stage.baseName}: ONBUILD trigger "${trigger}" of the base image failed: ${err.message}`);
      else throw err;
    }
  }
  for (const command of stage.commands) {
    try {
      builder.dispatch(command, stage.fromRefs.get(command) ?? []);
    } catch (err) {
      commandError(diags, command.src, err);
    }
  }
  const dependsOn = [...stage.deps.keys()].sort((a, b) => a - b);
  return {
    stage: { index: stage.index, name: stage.name, line: stage.from.src.line, base: resolved.base, platform: stage.platform, onBuildTriggers: [...resolved.image.onBuild], dependsOn, steps: builder.steps, image: builder.image, cacheKey: builder.steps.length > 0 ? builder.key.digest : baseKey },
    stateEnv: builder.finalStateEnv(),
    builder,
  };
}

export function imageDependencies(stages: readonly StageOutcome[]): ImageDependency[] {
  const byImage = new Map<string, ImageDependency>();
  const add = (image: string, resolved: boolean, line: number): void => {
    const known = byImage.get(image);
    if (!known || line < known.line) byImage.set(image, { image, resolved, line });
  };
  for (const { stage, builder } of stages) {
    if (stage.base.kind === 'image') add(`${stage.base.name}:${stage.base.tag}`, stage.base.resolved, stage.line);
    for (const [image, line] of builder.imageDependencies) add(image, false, line);
  }
  return [...byImage.values()].sort((a, b) => a.line - b.line);
}
