/**
 * Dockerfile → BuildPlan. Parses with dockerfile-ast, reads instructions as BuildKit does, resolves
 * the stage graph and base images, and plays the stages the target needs. Every error found is
 * reported (with line and column), not just the first.
 */
import { isSupportedPlatform, PLATFORM_ARGS, PROXY_ARGS } from './build-args.ts';
import { findCatalogImage, parseImageReference, referenceProblem, type CatalogImage } from './catalog.ts';
import { commandError, Diagnostics } from './diagnostics.ts';
import { CommandError, editDistance, type ArgCommand, type Command } from './instructions.ts';
import { readDockerfile, type InstructionSource, type ParsedDockerfile } from './instruction-source.ts';
import { applyLintChecks, parseLintChecks } from './lint-checks.ts';
import type { BuildPlan, PlanDiagnostic, PlanOutcome } from './plan.ts';
import { ShellExpansionError, expandWord } from './shell-lexer.ts';
import type { DispatchEnvironment, StageBuilder } from './stage-dispatch.ts';
import { executionOrder, findCycle, findStageByName, fromValuesOf, resolveFrom, type SourceRef, type Stage } from './stage-graph.ts';
import { checkInstructionCasing, parseAll, undeclaredInFrom } from './stage-parsing.ts';
import { imageDependencies, planStage, type StageOutcome } from './stage-planning.ts';

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

function expandGlobal(word: string, scope: ReadonlyMap<string, string>, escapeToken: string): string {
  try {
    return expandWord(word, scope, { escapeToken }).result;
  } catch (err) {
    if (err instanceof ShellExpansionError) throw new CommandError(err.message, undefined, 'ExpansionError');
    throw err;
  }
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

/** Plans a Dockerfile; diagnostics come in line order (file-level ones last). */
export function planDockerfile(text: string, options: PlanOptions = {}): PlanOutcome {
  const parsed = readDockerfile(text);
  let outcome = planUnsorted(parsed, options);
  if (parsed.check !== undefined) outcome = withLintChecks(outcome, parsed.check);
  const key = (d: PlanDiagnostic): number => (d.line === 0 ? Number.MAX_SAFE_INTEGER : d.line);
  outcome.diagnostics.sort((a, b) => key(a) - key(b));
  return outcome;
}

/** Applies `# check=`: skipped lint warnings go; with error=true the ones left fail the plan, as in BuildKit. */
function withLintChecks(outcome: PlanOutcome, check: { value: string; line: number }): PlanOutcome {
  const fail = (rule: string, message: string, line: number): PlanOutcome => {
    const diagnostics = outcome.diagnostics;
    diagnostics.push({ line, column: line === 0 ? 0 : 1, instruction: line === 0 ? '' : '# check', message, severity: 'error', rule });
    return { ok: false, diagnostics };
  };
  let checks;
  try {
    checks = parseLintChecks(check.value);
  } catch (err) {
    return fail('InvalidDirective', `failed to parse check options: ${(err as Error).message}`, check.line);
  }
  const violated = applyLintChecks(outcome.diagnostics, checks);
  if (violated.length > 0) return fail('LintViolation', `lint violation found for rules: ${violated.join(', ')} (# check=error=true at line ${check.line} makes these warnings errors)`, 0);
  return outcome;
}

function planUnsorted(parsed: ParsedDockerfile, options: PlanOptions): PlanOutcome {
  const diags = new Diagnostics();
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
  checkInstructionCasing(stages, diags);
  if (stages.length === 0) {
    const last = parsed.instructions[parsed.instructions.length - 1] as InstructionSource;
    diags.file('NoStage', 'the Dockerfile has no FROM instruction, so there is no stage to build', 'error', last.line);
    return { ok: false, diagnostics: diags.list };
  }
  const scope = globalScope(metaArgs, buildArgs, escapeToken, diags, consumed);
  checkDefaultBases(stages, globalScope(metaArgs, new Map(), escapeToken, new Diagnostics(), new Set()), escapeToken, diags);

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
    if (base && stage.baseName !== stage.baseName.toLowerCase()) {
      // BuildKit looks FROM <stage> up without lower-casing it (moby/buildkit#2003), so docker build fails here.
      diags.warn(src, 'UppercaseStageReference', `FROM ${stage.baseName}: planned as stage ${base.name}, but docker build (BuildKit) fails on this line ("invalid reference format: repository name must be lowercase"): write FROM ${base.name}`);
    }
    if (base) {
      stage.baseStage = base.index;
      stage.deps.set(base.index, stage.from);
    }
    constantPlatform(stage, diags);
    const platformVariable = /^\$(?:TARGETPLATFORM|\{TARGETPLATFORM\})$/.exec(stage.from.platform ?? '');
    if (platformVariable) {
      diags.warn(src, 'RedundantTargetPlatform', `Setting platform to predefined ${platformVariable[0]} in FROM is redundant as this is the default behavior`);
    }
    if (stage.name === 'scratch' || stage.name === 'context') {
      diags.warn(src, 'ReservedStageName', `Stage name should not use the same name as reserved stage "${stage.name}"`);
    }
    if (stage.platform !== '' && !isSupportedPlatform(stage.platform)) {
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
        // BuildKit reads a mount's from= while parsing, before any variable is known (COPY's is checked below).
        if (command.kind === 'RUN' && /\$./.test(raw)) {
          diags.error(command.src, 'InvalidFlag', `${command.src.keyword}: --mount from=${raw}: 'from' doesn't support variable expansion, define alias stage instead (FROM \${IMAGE} AS src, then from=src)`, columnOf(command.src, `from=${raw}`));
          continue;
        }
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
        if (ref.kind === 'image') {
          const problem = referenceProblem(value);
          const typo = isPlausibleImageRef(value, images ?? []) ? undefined : closeStageName(stages, value);
          if (problem) ref = { kind: 'invalid', message: `--from=${value}: ${problem}` };
          else if (typo) ref = { kind: 'invalid', message: `--from=${value} names no stage of this Dockerfile (did you mean ${typo}?); stages are: ${stageList(stages)}` };
          else if (!isPlausibleImageRef(value, images ?? [])) {
            diags.warn(command.src, 'FromImage', `${command.src.keyword}: --from=${value} is not a stage of this Dockerfile, so it names the image ${value}:latest (as in Docker)`);
          }
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
      // --target takes a stage name only (BuildKit looks it up by name), so unnamed stages are no choice.
      const named = stages.filter((s) => s.name !== '');
      const choices = named.length > 0 ? `the named stages are: ${stageList(named)}` : 'no stage of this Dockerfile has a name (FROM <image> AS <name>)';
      diags.file('TargetNotFound', `target stage "${options.target}" could not be found; ${choices}`, 'error');
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

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/**
 * BuildKit's FromPlatformFlagConstDisallowed: a literal FROM --platform pins one platform for every
 * build, unless the stage's name says it is that platform's stage (FROM --platform=linux/arm64 x AS arm64-tools).
 */
function constantPlatform(stage: Stage, diags: Diagnostics): void {
  const platform = stage.from.platform;
  if (platform === undefined || platform === '' || platform.includes('$')) return;
  const parts = platform.toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) return;
  const os = parts.length === 1 ? 'linux' : (parts[0] as string);
  const rawArch = (parts.length === 1 ? parts[0] : parts[1]) as string;
  const arch = ARCH_ALIASES[rawArch] ?? rawArch;
  if (stage.name.includes(os) || stage.name.includes(arch)) return;
  diags.warn(stage.from.src, 'FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value "${platform}"`);
}

/**
 * BuildKit's InvalidDefaultArgInFrom: with no --build-arg, the global ARG defaults must still make
 * every FROM a valid name (ARG TAG / FROM debian:$TAG builds only when TAG is passed).
 */
function checkDefaultBases(stages: readonly Stage[], defaults: ReadonlyMap<string, string>, escapeToken: string, diags: Diagnostics): void {
  for (const stage of stages) {
    if (!stage.from.base.includes('$')) continue;
    let name: string;
    try {
      name = expandGlobal(stage.from.base, defaults, escapeToken);
    } catch {
      continue;
    }
    if (name === 'scratch' || findStageByName(stages, name, stage.index)) continue;
    if (name === '' || referenceProblem(name) !== undefined) {
      diags.warn(stage.from.src, 'InvalidDefaultArgInFrom', `Default value for ARG ${stage.from.base} results in empty or invalid base image name`);
    }
  }
}

function columnOf(src: InstructionSource, needle: string): number | undefined {
  const at = src.original.indexOf(needle);
  return at >= 0 ? src.column + at : undefined;
}

const stageList = (stages: readonly Stage[]): string => stages.map((s) => (s.name ? `${s.name} (${s.index})` : String(s.index))).join(', ');

/** A --from that is no stage is an image only if it looks like one (has a tag, registry or path) or is in the catalog. */
/** A stage name a mistyped --from was probably meant to be (edit distance 2 or less). */
function closeStageName(stages: readonly Stage[], value: string): string | undefined {
  const lower = value.toLowerCase();
  return stages.find((s) => s.name !== '' && editDistance(s.name, lower) <= 2)?.name;
}

function isPlausibleImageRef(value: string, images: readonly CatalogImage[]): boolean {
  if (/[:/@]/.test(value)) return true;
  return findCatalogImage(images, parseImageReference(value)) !== undefined;
}

