/** Domain plan → the contract's kindling.planner.v1 messages (PlanBuild's response, Build.plan). */
import {
  MountType,
  Severity,
  type BuildPlan as ProtoBuildPlan,
  type CopyAction,
  type CopySourceSpec,
  type Diagnostic,
  type PlannedStage as ProtoPlannedStage,
  type PlannedStep as ProtoPlannedStep,
  type RunAction,
  type RunMount as ProtoRunMount,
} from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import type { BuildPlan, PlanDiagnostic, PlannedStage, PlannedStep, RunMount, StageBase } from '../../domain/plan.ts';
import { formatImageReference, parseImageReference } from '../../domain/catalog.ts';
import { toProtoImageMetadata } from '../../execution/image-metadata.ts';

export function toProtoDiagnostic(d: PlanDiagnostic, file: string): Diagnostic {
  return {
    severity: d.severity === 'error' ? Severity.SEVERITY_ERROR : Severity.SEVERITY_WARNING,
    line: d.line,
    column: d.column,
    endLine: d.endLine ?? d.line,
    endColumn: 0,
    instruction: d.instruction,
    message: d.message,
    rule: d.rule,
    file,
  };
}

const MOUNT_TYPES: Record<RunMount['type'], MountType> = {
  bind: MountType.MOUNT_TYPE_BIND,
  cache: MountType.MOUNT_TYPE_CACHE,
  tmpfs: MountType.MOUNT_TYPE_TMPFS,
  secret: MountType.MOUNT_TYPE_SECRET,
  ssh: MountType.MOUNT_TYPE_SSH,
};

function toProtoMount(m: RunMount): ProtoRunMount {
  const out: ProtoRunMount = { type: MOUNT_TYPES[m.type], target: '', source: '', from: '', id: '', readOnly: false, sharing: '', mode: '', required: false, env: '', size: '0' };
  const octal = (mode: number): string => '0' + mode.toString(8);
  switch (m.type) {
    case 'bind':
      Object.assign(out, { target: m.target, source: m.source, from: m.from ?? '', readOnly: m.readonly });
      break;
    case 'cache':
      Object.assign(out, { target: m.target, id: m.id, sharing: m.sharing, from: m.from ?? '', source: m.source ?? '', readOnly: m.readonly, mode: m.mode !== undefined ? octal(m.mode) : '' });
      if (m.uid !== undefined) out.uid = m.uid;
      if (m.gid !== undefined) out.gid = m.gid;
      break;
    case 'tmpfs':
      Object.assign(out, { target: m.target, size: String(m.sizeBytes ?? 0) });
      break;
    case 'secret':
      Object.assign(out, { id: m.id, target: m.target ?? '', env: m.env ?? '', required: m.required, mode: octal(m.mode), uid: m.uid, gid: m.gid });
      break;
    case 'ssh':
      Object.assign(out, { id: m.id, target: m.target, required: m.required, mode: octal(m.mode), uid: m.uid, gid: m.gid });
      break;
  }
  return out;
}

function toProtoAction(step: PlannedStep): ProtoPlannedStep['action'] {
  const action = step.action;
  switch (action.kind) {
    case 'run': {
      const run: RunAction = {
        command: action.form === 'exec' ? { $case: 'exec', value: { argv: action.argv } } : { $case: 'script', value: action.argv[action.argv.length - 1] ?? '' },
        mounts: action.mounts.map(toProtoMount),
        network: action.network,
        security: action.security,
        heredocs: action.heredocs,
        files: action.files.map((f) => ({ path: f.path, content: f.content, mode: f.mode })),
      };
      return { $case: 'run', value: run };
    }
    case 'copy': {
      const sources: CopySourceSpec[] = [
        ...action.sources.map((path): CopySourceSpec => ({ source: { $case: 'path', value: path } })),
        ...action.urls.map((u): CopySourceSpec => ({ source: { $case: 'url', value: u.url } })),
        ...action.git.map((g): CopySourceSpec => ({ source: { $case: 'gitUrl', value: g.url } })),
        ...action.inline.map((f): CopySourceSpec => ({ source: { $case: 'heredoc', value: { name: f.name ?? f.path, content: f.content, stripTabs: false, quoted: false } } })),
      ];
      const copy: CopyAction = {
        add: action.instruction === 'ADD',
        sources,
        destination: action.destination,
        chown: action.chown ?? '',
        link: action.link,
        exclude: action.exclude,
        checksum: action.urls[0]?.checksum ?? action.git[0]?.checksum ?? '',
        keepGitDir: action.git.some((g) => g.keepGitDir),
        parents: action.parents,
        unpackArchives: action.unpackArchives,
      };
      if (action.origin.kind === 'stage') copy.from = { $case: 'fromStageIndex', value: action.origin.stageIndex };
      else if (action.origin.kind === 'image') copy.from = { $case: 'fromImage', value: action.origin.reference };
      if (action.chmod !== undefined) copy.chmod = action.chmod;
      return { $case: 'copy', value: copy };
    }
    case 'workdir':
      return { $case: 'workdir', value: { path: action.path } };
    case 'config':
      return { $case: 'metadata', value: { values: action.values } };
  }
}

function toProtoStep(step: PlannedStep): ProtoPlannedStep {
  return {
    index: step.index,
    instruction: step.instruction,
    line: step.line,
    endLine: step.endLine,
    original: step.original,
    canonical: step.expanded,
    cacheKey: step.cacheKey.digest,
    context: { env: step.context.env, user: step.context.user, workingDir: step.context.workdir, shell: step.context.shell },
    action: toProtoAction(step),
    fromOnbuild: step.onBuildTrigger,
    cacheKeyComplete: step.cacheKey.complete,
    inputs: step.inputs.map((i) => ({ kind: i.kind, ref: i.ref, digest: i.digest ?? '' })),
  };
}

function toProtoBase(base: StageBase): ProtoPlannedStage['base'] {
  switch (base.kind) {
    case 'scratch':
      return { source: { $case: 'scratch', value: true }, resolved: true, platform: '', onbuildTriggers: [] };
    case 'stage':
      return { source: { $case: 'stageIndex', value: base.stageIndex }, resolved: true, platform: '', onbuildTriggers: [] };
    case 'image':
      return { source: { $case: 'image', value: formatImageReference(base.name, base.tag, parseImageReference(base.reference)) }, resolved: base.resolved, platform: '', onbuildTriggers: [] };
  }
}

function toProtoStage(stage: PlannedStage): ProtoPlannedStage {
  const base = toProtoBase(stage.base) as NonNullable<ProtoPlannedStage['base']>;
  base.platform = stage.platform;
  base.onbuildTriggers = stage.onBuildTriggers;
  return {
    index: stage.index,
    name: stage.name,
    base,
    steps: stage.steps.map(toProtoStep),
    image: toProtoImageMetadata(stage.image),
    dependsOn: stage.dependsOn,
    line: stage.line,
    cacheKey: stage.cacheKey,
  };
}

export function toProtoPlan(plan: BuildPlan, file: string): ProtoBuildPlan {
  return {
    syntax: plan.syntax,
    escapeToken: plan.escapeToken,
    stages: plan.stages.map(toProtoStage),
    targetStageIndex: plan.targetStage,
    image: toProtoImageMetadata(plan.image),
    warnings: plan.diagnostics.filter((d) => d.severity === 'warning').map((d) => toProtoDiagnostic(d, file)),
    unusedBuildArgs: plan.unusedBuildArgs,
    imageDependencies: plan.imageDependencies,
    skippedStageIndexes: plan.skippedStages.map((s) => s.index),
    contextSources: plan.contextSources,
    secrets: plan.secrets,
    cacheKey: plan.cacheKey,
    buildArgs: plan.buildArgs,
  };
}
