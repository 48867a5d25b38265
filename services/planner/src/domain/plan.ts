/** The build plan: what PlanBuild returns and CreateBuild executes in a microVM. Plain data, JSON-safe. */

export type Severity = 'error' | 'warning';

export interface PlanDiagnostic {
  /** 1-based line of the instruction (or of the directive) the diagnostic is about; 0 for the whole file. */
  line: number;
  /** 1-based column; the instruction keyword unless a more precise position is known. */
  column: number;
  /** The instruction keyword (`RUN`, `COPY`, `# escape`, ...) or '' for the whole file. */
  instruction: string;
  message: string;
  severity: Severity;
  /** Stable rule id, e.g. "UnknownInstruction", "UndefinedVariable", "UnresolvedBaseImage". */
  rule: string;
  /** Last line of the instruction, when it spans several. */
  endLine?: number;
}

export interface HealthcheckConfig {
  /** ["NONE"], ["CMD", arg...] or ["CMD-SHELL", command]. */
  test: string[];
  intervalNs: number;
  timeoutNs: number;
  startPeriodNs: number;
  startIntervalNs: number;
  retries: number;
}

/** The image configuration a stage produces, as Docker's image config carries it. */
export interface ImageMetadata {
  entrypoint: string[];
  cmd: string[];
  /** `K=V`, in order; build args never appear here. */
  env: string[];
  user: string;
  workingDir: string;
  /** `port/proto`, e.g. `80/tcp`, sorted. */
  exposedPorts: string[];
  labels: Record<string, string>;
  volumes: string[];
  stopSignal: string;
  healthcheck?: HealthcheckConfig;
  /** ONBUILD triggers, verbatim, run by builds that use this image as a base. */
  onBuild: string[];
  /** SHELL, empty for the default ["/bin/sh", "-c"]. */
  shell: string[];
}

export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'stage'; stageIndex: number }
  | { kind: 'image'; reference: string; name: string; tag: string; digest?: string; resolved: boolean; imageKind?: 'base-os' | 'built' };

/** The environment a step runs in. */
export interface StepContext {
  /** Image env plus the stage's ARG values (and proxy build args), `K=V`. */
  env: string[];
  user: string;
  workdir: string;
  shell: string[];
}

export interface StepInput {
  kind: 'context' | 'stage' | 'image' | 'url' | 'git' | 'inline' | 'base';
  /** Pattern, stage index, image reference, URL or inline file name. */
  ref: string;
  /** sha256 digest when known at planning time. */
  digest?: string;
}

export interface StepCacheKey {
  /** `sha256:<hex>` over the parent key, the canonical expanded instruction and the input digests. */
  digest: string;
  parent: string;
  /** False while some input's digest is unknown (context files not fetched yet). */
  complete: boolean;
}

export type RunMount =
  | { type: 'bind'; target: string; source: string; from?: string; readonly: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; from?: string; source?: string; readonly: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'tmpfs'; target: string; sizeBytes?: number }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'ssh'; id: string; target: string; required: boolean; mode: number; uid: number; gid: number };

export interface InlineFile {
  /** The heredoc delimiter it came from, when it came from one. */
  name?: string;
  path: string;
  content: string;
  mode: number;
}

export type StepAction =
  | {
      kind: 'run';
      /** The full argv to execute (shell prepended for the shell form). */
      argv: string[];
      form: 'shell' | 'exec';
      /** Files to create before running (a heredoc script with a shebang). */
      files: InlineFile[];
      mounts: RunMount[];
      /** The instruction's heredocs as written (already part of argv or files). */
      heredocs: { name: string; content: string; stripTabs: boolean; quoted: boolean }[];
      network: 'default' | 'none' | 'host';
      security: 'sandbox' | 'insecure';
    }
  | {
      kind: 'copy';
      instruction: 'COPY' | 'ADD';
      /** Where the sources come from: the build context, an earlier stage or an image. */
      origin: { kind: 'context' } | { kind: 'stage'; stageIndex: number } | { kind: 'image'; reference: string };
      /** Source patterns relative to the origin's root (context: the fetcher matches them). */
      sources: string[];
      urls: { url: string; checksum?: string }[];
      git: { url: string; keepGitDir: boolean; checksum?: string }[];
      inline: InlineFile[];
      /** Absolute destination; ends in `/` when it is a directory. */
      destination: string;
      chown?: string;
      chmod?: number;
      link: boolean;
      parents: boolean;
      exclude: string[];
      /** ADD extracts local tar archives. */
      unpackArchives: boolean;
    }
  | { kind: 'workdir'; path: string; createdWith: { user: string } }
  /** Metadata only: nothing runs in the VM. `values` are the pairs or values it set (`K=V`, argv, ...). */
  | { kind: 'config'; values: string[] };

export interface PlannedStep {
  /** Position in the stage, from 0. */
  index: number;
  line: number;
  endLine: number;
  instruction: string;
  /** The instruction as written, continuations joined. */
  original: string;
  /** Canonical expanded instruction (what the cache key hashes). */
  expanded: string;
  /** The step came from an ONBUILD trigger of the base image. */
  onBuildTrigger: boolean;
  context: StepContext;
  action: StepAction;
  inputs: StepInput[];
  cacheKey: StepCacheKey;
}

export interface PlannedStage {
  index: number;
  /** Lower-cased `AS` name, or '' when unnamed. */
  name: string;
  line: number;
  base: StageBase;
  /** `--platform` as written after expansion, '' if absent. */
  platform: string;
  /** ONBUILD triggers of the base that ran before the stage's own steps. */
  onBuildTriggers: string[];
  /** Indexes of stages this one needs (its base and every --from). */
  dependsOn: number[];
  steps: PlannedStep[];
  image: ImageMetadata;
  /** Key of the stage's last step (or of its base when it has none). */
  cacheKey: string;
}

export interface ImageDependency {
  /** `name:tag` (or the reference as written for --from images). */
  image: string;
  resolved: boolean;
  /** Line of the first reference. */
  line: number;
}

export interface BuildPlan {
  syntax: string;
  escapeToken: string;
  targetStage: number;
  /** Needed stages, in Dockerfile order; the target is last. */
  stages: PlannedStage[];
  skippedStages: { index: number; name: string }[];
  /** Build args after --build-arg overrides, as ARG instructions consumed them. */
  buildArgs: Record<string, string>;
  /** Every build-context pattern the needed stages copy (for the fetcher). */
  contextSources: string[];
  /** Secret ids mounted by RUN steps. */
  secrets: string[];
  /** Images named by FROM or --from that are not stages. */
  imageDependencies: ImageDependency[];
  /** --build-arg names that no ARG consumed. */
  unusedBuildArgs: string[];
  image: ImageMetadata;
  cacheKey: string;
  diagnostics: PlanDiagnostic[];
}

export type PlanOutcome = { ok: true; plan: BuildPlan; diagnostics: PlanDiagnostic[] } | { ok: false; diagnostics: PlanDiagnostic[] };
