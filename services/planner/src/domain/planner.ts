/**
 * Dockerfile → BuildPlan. Parses with dockerfile-ast, reads instructions as BuildKit does, resolves
 * the stage graph and base images, and plays the stages the target needs. Every error found is
 * reported (with line and column), not just the first.
 */
import { PLATFORM_ARGS, PROXY_ARGS, SUPPORTED_PLATFORMS } from './build-args.ts';
import { baseCacheKey } from './cache-key.ts';
import { describeCatalog, findCatalogImage, parseImageReference, referenceProblem, type CatalogImage } from './catalog.ts';
import { CommandError, parseCommand, type ArgCommand, type Command, type FromCommand } from './instructions.ts';
import { readDockerfile, type InstructionSource } from './instruction-source.ts';
import type { BuildPlan, ImageDependency, ImageMetadata, PlanDiagnostic, PlannedStage, PlanOutcome, StageBase, StepCacheKey } from './plan.ts';
import { expandWord, ShellExpansionError } from './shell-lexer.ts';
import { emptyImage, StageBuilder, type DispatchEnvironment } from './stage-dispatch.ts';
import { executionOrder, findCycle, findStageByName, fromValuesOf, resolveFrom, type SourceRef, type Stage } from './stage-graph.ts';

export interface PlanOptions {
  buildArgs?: Readonly<Record<string, string>>;
  /** Stage name to build; the last stage when absent. */
  target?: string;
  /** Images available as bases (a snapshot of the ImageCatalog); absent = no catalog, nothing resolves. */
  images?: readonly CatalogImage[];
  /** 'build': an unknown base image is an error. 'plan' (default): it is a warning and the base is unresolved. */
  mode?: 'plan' | 'build';
  /** Digests of build-context patterns, when the fetcher already knows them. */
  contextDigests?: ReadonlyMap<string, string>;
}

type Located = Pick<InstructionSource, 'line' | 'column' | 'keyword' | 'endLine'>;

function located(src: Located, rule: string, message: string, severity: 'error' | 'warning', column?: number): PlanDiagnostic {
  const d: PlanDiagnostic = { line: src.line, column: column ?? src.column, instruction: src.keyword, message, severity, rule };
  if (src.endLine > src.line) d.endLine = src.endLine;
  return d;
}

class Diagnostics {
  readonly list: PlanDiagnostic[] = [];
  error(src: Located, rule: string, message: string, column?: number): void {
    this.list.push(located(src, rule, message, 'error', column));
  }
  warn(src: Located, rule: string, message: string): void {
    this.list.push(located(src, rule, message, 'warning'));
  }
  file(rule: string, message: string, severity: 'error' | 'warning', line = 0): void {
    this.list.push({ line, column: line === 0 ? 0 : 1, instruction: '', message, severity, rule });
  }
  get hasErrors(): boolean {
    return this.list.some((d) => d.severity === 'error');
  }
}

function commandError(diags: Diagnostics, src: InstructionSource, err: unknown): void {
  if (err instanceof CommandError) diags.error(src, err.rule, `${src.keyword}: ${err.message}`, err.column);
  else throw err;
}

function expandGlobal(word: string, scope: ReadonlyMap<string, string>, escapeToken: string): string {
  try {
    return expandWord(word, scope, { escapeToken }).result;
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new CommandError(err.message, undefined, 'ExpansionError');
    throw err;
  }
}

/** Variables a FROM line uses that no global ARG declares (BuildKit's UndefinedArgInFrom). */
function undeclaredInFrom(from: FromCommand, declared: ReadonlySet<string>, escapeToken: string): string[] {
  const names = new Set<string>();
  for (const word of [from.base, from.platform ?? '']) {
    if (!word.includes('$')) continue;
    try {
      for (const name of expandWord(word, new Map(), { escapeToken }).unmatched) if (!declared.has(name)) names.add(name);
    } catch {
      // reported when the FROM is expanded
    }
  }
  return [...names];
}

const JSON_LOOKING = /^\s*\[.*\]\s*$/s;

function parseAll(instructions: readonly InstructionSource[], escapeToken: string, diags: Diagnostics): { metaArgs: ArgCommand[]; stages: Stage[] } {
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  for (const src of instructions) {
    if (src.emptyContinuationLine) diags.warn(src, 'EmptyContinuationLine', `${src.keyword}: empty continuation line inside the instruction (lines ${src.line}-${src.endLine}); Docker will reject this in a future release`);
    let command: Command;
    try {
      command = parseCommand(src, escapeToken);
    } catch (err) {
      commandError(diags, src, err);
      if (src.keyword === 'FROM') stages.push(placeholderStage(src, stages.length));
      continue;
    }
    if ((command.kind === 'RUN' || command.kind === 'CMD' || command.kind === 'ENTRYPOINT') && command.form === 'shell' && JSON_LOOKING.test(src.rest)) {
      diags.warn(src, 'InvalidJSONArguments', `${src.keyword}: the arguments look like a JSON array but are not valid JSON, so they run in the shell form: ${src.rest}`);
    }
    if (command.kind === 'MAINTAINER') diags.warn(src, 'MaintainerDeprecated', 'MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors="..." instead (kept as the label "maintainer")');
    if (command.kind === 'ONBUILD' && !['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'].includes(command.triggerKeyword)) {
      diags.warn(src, 'InvalidOnbuildTrigger', `ONBUILD: "${command.triggerKeyword}" is not an instruction; every build FROM this image will fail on this trigger`);
    }
    if (command.kind === 'FROM') {
      stages.push({ index: stages.length, name: command.stageName ?? '', from: command, commands: [], baseName: command.base, platform: command.platform ?? '', fromRefs: new Map(), deps: new Map() });
    } else if (stages.length === 0) {
      if (command.kind === 'ARG') metaArgs.push(command);
      else diags.error(src, 'InstructionBeforeFrom', `${src.keyword} comes before the first FROM: only ARG may precede FROM (no build stage in current context)`);
    } else (stages[stages.length - 1] as Stage).commands.push(command);
  }
  return { metaArgs, stages };
}

function placeholderStage(src: InstructionSource, index: number): Stage {
  const from: FromCommand = { kind: 'FROM', src, base: 'scratch' };
  return { index, name: '', from, commands: [], baseName: 'scratch', platform: '', fromRefs: new Map(), deps: new Map() };
}

/** Global scope: platform args, then the ARGs before the first FROM (with --build-arg overrides). */
function globalScope(metaArgs: readonly ArgCommand[], buildArgs: ReadonlyMap<string, string>, escapeToken: string, diags: Diagnostics, consumed: Set<string>): Map<string, string> {
  const scope = new Map(PLATFORM_ARGS);
  for (const command of metaArgs) {
    for (const arg of command.args) {
      consumed.add(arg.key);
      const override = buildArgs.get(arg.key);
      try {
        const value = override ?? (arg.value !== undefined ? expandGlobal(arg.value, scope, escapeToken) : undefined);
        if (value !== undefined) scope.set(arg.key, value);
      } catch (err) {
        commandError(diags, command.src, err);
      }
    }
  }
  return scope;
}

interface StageOutcome {
  stage: PlannedStage;
  stateEnv: ReadonlyMap<string, string>;
  builder: StageBuilder;
}

/** Plans a Dockerfile; diagnostics come in line order (file-level ones last). */
export function planDockerfile(text: string, options: PlanOptions = {}): PlanOutcome {
  const outcome = planUnsorted(text, options);
  const key = (d: PlanDiagnostic): number => (d.line === 0 ? Number.MAX_SAFE_INTEGER : d.line);
  outcome.diagnostics.sort((a, b) => key(a) - key(b));
  return outcome;
}

function planUnsorted(text: string, options: PlanOptions): PlanOutcome {
  const diags = new Diagnostics();
  const parsed = readDockerfile(text);
  for (const p of parsed.problems) diags.list.push({ ...p, severity: 'error' });
  if (parsed.instructions.length === 0) {
    diags.file('EmptyDockerfile', 'the Dockerfile has no instructions: it needs at least a FROM (e.g. FROM debian:12)', 'error', 1);
    return { ok: false, diagnostics: diags.list };
  }
  const escapeToken = parsed.escapeToken;
  const buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
  const images = options.images;
  const consumed = new Set<string>();
  const { metaArgs, stages } = parseAll(parsed.instructions, escapeToken, diags);
  if (stages.length === 0) {
    const last = parsed.instructions[parsed.instructions.length - 1] as InstructionSource;
    diags.file('NoStage', 'the Dockerfile has no FROM instruction, so there is no stage to build', 'error', last.line);
    return { ok: false, diagnostics: diags.list };
  }
  const scope = globalScope(metaArgs, buildArgs, escapeToken, diags, consumed);

  // Names, bases and the platform of each stage.
  const declaredGlobals = new Set([...PLATFORM_ARGS.keys(), ...metaArgs.flatMap((c) => c.args.map((a) => a.key))]);
  const seenNames = new Map<string, number>();
  for (const stage of stages) {
    const src = stage.from.src;
    if (stage.name !== '') {
      if (seenNames.has(stage.name)) diags.error(src, 'DuplicateStageName', `FROM: duplicate stage name "${stage.name}" (first used by stage ${seenNames.get(stage.name)}); stage names must be unique`);
      else seenNames.set(stage.name, stage.index);
    }
    for (const name of undeclaredInFrom(stage.from, declaredGlobals, escapeToken)) {
      diags.warn(src, 'UndefinedArgInFrom', `FROM argument '${name}' is not declared: add ARG ${name} before the first FROM (it expands to an empty string)`);
    }
    try {
      stage.baseName = expandGlobal(stage.from.base, scope, escapeToken);
      if (stage.baseName === '') throw new CommandError(`base name (${stage.from.base}) should not be blank: set the ARG it uses before the first FROM or pass --build-arg`);
      stage.platform = stage.from.platform !== undefined ? expandGlobal(stage.from.platform, scope, escapeToken) : '';
    } catch (err) {
      commandError(diags, src, err);
    }
    const base = findStageByName(stages, stage.baseName, stage.index);
    if (!base && stage.baseName !== 'scratch' && stage.baseName !== '') {
      const problem = referenceProblem(stage.baseName);
      if (problem) diags.error(src, 'InvalidReference', `FROM ${stage.baseName}: ${problem}`);
    }
    if (base) {
      stage.baseStage = base.index;
      stage.deps.set(base.index, stage.from);
    }
    if (stage.platform !== '' && !SUPPORTED_PLATFORMS.has(stage.platform)) {
      diags.warn(src, 'PlatformNotSupported', `FROM --platform=${stage.platform}: kindling builds linux/amd64 microVMs only; this stage is planned for linux/amd64`);
    }
  }

  // --from references (expanded with the global args, as BuildKit does when it builds the graph).
  for (const stage of stages) {
    for (const command of stage.commands) {
      const values = fromValuesOf(command);
      if (values.length === 0) continue;
      const refs: SourceRef[] = [];
      for (const raw of values) {
        let value: string;
        try {
          value = expandGlobal(raw, scope, escapeToken);
        } catch (err) {
          commandError(diags, command.src, err);
          continue;
        }
        // BuildKit fixes the stage graph before any stage runs, so COPY --from takes no variables.
        if (command.kind === 'COPY' && value !== raw) {
          diags.error(command.src, 'InvalidFlag', `${command.src.keyword}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround (FROM \${IMAGE} AS src, then COPY --from=src)`, columnOf(command.src, `--from=${raw}`));
          continue;
        }
        let ref = resolveFrom(stages, value);
        if (ref.kind === 'image' && isPlausibleImageRef(value, images ?? []) && referenceProblem(value)) {
          ref = { kind: 'invalid', message: `--from=${value}: ${referenceProblem(value)}` };
        } else if (ref.kind === 'image' && !isPlausibleImageRef(value, images ?? [])) {
          ref = { kind: 'invalid', message: `--from=${value} names no stage of this Dockerfile and no known image; stages are: ${stageList(stages)}` };
        }
        if (ref.kind === 'invalid') diags.error(command.src, 'UnknownStage', `${command.src.keyword}: ${ref.message}`, columnOf(command.src, `--from=${raw}`) ?? columnOf(command.src, `from=${raw}`));
        else {
          if (ref.kind === 'stage' && !stage.deps.has(ref.index)) stage.deps.set(ref.index, command);
          refs.push(ref);
        }
      }
      stage.fromRefs.set(command, refs);
    }
  }

  const cycle = findCycle(stages);
  if (cycle) {
    const label = cycle.stage.name || String(cycle.stage.index);
    const first = cycle.commands[0] as Command;
    const lines = cycle.commands.map((c) => c.src.line).join(', ');
    diags.error(first.src, 'CircularDependency', `${first.src.keyword}: circular dependency detected on stage: ${label} (the stages depend on each other through lines ${lines})`);
  }

  // The target.
  let target = stages.length - 1;
  if (options.target !== undefined && options.target !== '') {
    const found = findStageByName(stages, options.target);
    if (!found) {
      diags.file('TargetNotFound', `target stage "${options.target}" could not be found; the named stages are: ${stageList(stages)}`, 'error');
      return { ok: false, diagnostics: diags.list };
    }
    target = found.index;
  }
  if (cycle) return { ok: false, diagnostics: diags.list };

  const order = executionOrder(stages, target);
  const planned = new Map<number, StageOutcome>();
  const environment: DispatchEnvironment = {
    escapeToken,
    globalArgs: scope,
    buildArgs,
    consumedArgs: consumed,
    contextDigests: options.contextDigests ?? new Map(),
    stageCacheKey: (index) => planned.get(index)?.stage.cacheKey,
    warn: (command, rule, message) => diags.warn(command.src, rule, message),
  };
  for (const index of order) planned.set(index, planStage(stages[index] as Stage, planned, environment, images, options.mode ?? 'plan', diags));

  const unused = [...buildArgs.keys()].filter((k) => !consumed.has(k) && !PROXY_ARGS.has(k)).sort();
  if (unused.length > 0) diags.file('UnusedBuildArgs', `One or more build-args [${unused.join(' ')}] were not consumed by any ARG of the stages built`, 'warning');
  if (diags.hasErrors) return { ok: false, diagnostics: diags.list };

  const needed = order.map((i) => planned.get(i) as StageOutcome);
  const targetStage = planned.get(target) as StageOutcome;
  const effectiveArgs: Record<string, string> = {};
  for (const k of [...consumed].sort()) {
    const v = buildArgs.get(k) ?? scope.get(k);
    if (v !== undefined) effectiveArgs[k] = v;
  }
  const union = (pick: (b: StageBuilder) => ReadonlySet<string>): string[] => [...new Set(needed.flatMap((s) => [...pick(s.builder)]))].sort();
  const plan: BuildPlan = {
    syntax: parsed.syntax ?? '',
    escapeToken,
    targetStage: target,
    stages: needed.map((s) => s.stage),
    skippedStages: stages.filter((s) => !planned.has(s.index)).map((s) => ({ index: s.index, name: s.name })),
    buildArgs: effectiveArgs,
    contextSources: union((b) => b.contextSources),
    secrets: union((b) => b.secrets),
    imageDependencies: imageDependencies(needed),
    unusedBuildArgs: unused,
    image: targetStage.stage.image,
    cacheKey: targetStage.stage.cacheKey,
    diagnostics: diags.list,
  };
  return { ok: true, plan, diagnostics: diags.list };
}

function imageDependencies(stages: readonly StageOutcome[]): ImageDependency[] {
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

function columnOf(src: InstructionSource, needle: string): number | undefined {
  const at = src.original.indexOf(needle);
  return at >= 0 ? src.column + at : undefined;
}

const stageList = (stages: readonly Stage[]): string => stages.map((s) => (s.name ? `${s.name} (${s.index})` : String(s.index))).join(', ');

/** A --from that is no stage is an image only if it looks like one (has a tag, registry or path) or is in the catalog. */
function isPlausibleImageRef(value: string, images: readonly CatalogImage[]): boolean {
  if (/[:/@]/.test(value)) return true;
  return findCatalogImage(images, parseImageReference(value)) !== undefined;
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
  if (!images) {
    diags.warn(stage.from.src, 'UnresolvedBaseImage', `FROM ${stage.baseName}: not checked against an image catalog (planned without a VM host); the base is unresolved`);
    const base: StageBase = { kind: 'image', reference: stage.baseName, name: ref.name, tag: ref.tag, resolved: false };
    if (ref.digest !== undefined) base.digest = ref.digest;
    return { base, image: emptyImage(), key: baseCacheKey(`unresolved:${stage.baseName}`, platform) };
  }
  if (!found) {
    const message = `FROM ${stage.baseName}: no image ${ref.name}:${ref.tag} in the image catalog; available: ${describeCatalog(images)}`;
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

function planStage(stage: Stage, planned: ReadonlyMap<number, StageOutcome>, environment: DispatchEnvironment, images: readonly CatalogImage[] | undefined, mode: 'plan' | 'build', diags: Diagnostics): StageOutcome {
  const resolved = resolveBase(stage, planned, images, mode, diags);
  const builder = new StageBuilder(environment, resolved.image, resolved.stateEnv, resolved.key);
  const baseKey = resolved.key.digest;
  // Docker runs the base image's ONBUILD triggers first, as if they were written after FROM.
  for (const trigger of resolved.image.onBuild) {
    const src = stage.from.src;
    try {
      const triggerFile = readDockerfile(trigger);
      const inner = triggerFile.instructions[0];
      if (!inner || triggerFile.problems.length > 0) throw new CommandError(triggerFile.problems[0]?.message ?? 'empty trigger');
      const command = parseCommand({ ...inner, line: src.line, column: src.column, endLine: src.endLine }, environment.escapeToken);
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
