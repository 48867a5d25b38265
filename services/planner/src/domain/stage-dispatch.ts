/**
 * Plays one stage's instructions the way BuildKit dispatches them: variable expansion with the
 * stage's env and ARGs, image config updates, and one PlannedStep (with its cache key) per
 * instruction. Errors are thrown as CommandError and reported by the caller.
 */
import path from 'node:path/posix';
import { PROXY_ARGS } from './build-args.ts';
import { sha256, stepCacheKey } from './cache-key.ts';
import { planCopy } from './copy-step.ts';
import { checkSignal, ConfigValueError, exposedPorts } from './image-config.ts';
import { CommandError, type Command } from './instructions.ts';
import type { ImageMetadata, PlannedStep, StepAction, StepCacheKey, StepContext, StepInput } from './plan.ts';
import { MountError } from './run-mounts.ts';
import { planRun } from './run-step.ts';
import { expandString, expandWord, ShellExpansionError, type LexerOptions } from './shell-lexer.ts';
import type { SourceRef } from './stage-graph.ts';
import type { StepScope } from './step-scope.ts';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface DispatchEnvironment {
  escapeToken: string;
  /** Platform args and global ARGs (the values an in-stage `ARG NAME` inherits). */
  globalArgs: ReadonlyMap<string, string>;
  buildArgs: ReadonlyMap<string, string>;
  consumedArgs: Set<string>;
  contextDigests: ReadonlyMap<string, string>;
  stageCacheKey(index: number): string | undefined;
  warn(command: Command, rule: string, message: string): void;
}

export const emptyImage = (): ImageMetadata => ({
  entrypoint: [], cmd: [], env: [], user: '', workingDir: '', exposedPorts: [], labels: {}, volumes: [], stopSignal: '', onBuild: [], shell: [],
});

export function cloneImage(image: ImageMetadata): ImageMetadata {
  const copy: ImageMetadata = { ...image, entrypoint: [...image.entrypoint], cmd: [...image.cmd], env: [...image.env], exposedPorts: [...image.exposedPorts], labels: { ...image.labels }, volumes: [...image.volumes], onBuild: [...image.onBuild], shell: [...image.shell] };
  if (image.healthcheck) copy.healthcheck = { ...image.healthcheck, test: [...image.healthcheck.test] };
  return copy;
}

function envMap(entries: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq < 0) map.set(entry, '');
    else map.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return map;
}

const envList = (map: ReadonlyMap<string, string>): string[] => Array.from(map, ([k, v]) => `${k}=${v}`);
const configAction = (values: string[]): StepAction => ({ kind: 'config', values });

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a RUN or COPY depends on besides its own arguments, as one digest. */
const fingerprintOf = (context: StepContext): string =>
  sha256(`${context.user}\n${context.workdir}\n${context.shell.join('\0')}\n${context.env.join('\0')}`);

// BuildKit's token lists: a name whose first or last _-separated word says secret, unless it says public/file/version.
const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const NOT_SECRET_NAME = /(?:_|^)(?:public|file|version)(?:_|$)/i;

export class StageBuilder {
  readonly image: ImageMetadata;
  /** BuildKit's state env: image env plus ARG values, in definition order. */
  readonly env: Map<string, string>;
  private readonly imageEnv: Map<string, string>;
  private cmdSet = false;
  private envDirty = true;
  readonly steps: PlannedStep[] = [];
  key: StepCacheKey;
  readonly secrets = new Set<string>();
  readonly contextSources = new Set<string>();
  /** Images named by --from (reference → first line). */
  readonly imageDependencies = new Map<string, number>();
  private readonly lexer: LexerOptions;

  constructor(
    private readonly environment: DispatchEnvironment,
    base: ImageMetadata,
    baseStateEnv: ReadonlyMap<string, string> | undefined,
    baseKey: StepCacheKey,
    /** A WORKDIR was set in this build already (by the stage this one starts FROM). */
    public workdirSet = false,
  ) {
    this.image = cloneImage(base);
    this.image.onBuild = [];
    this.imageEnv = envMap(base.env);
    if (!this.imageEnv.has('PATH')) this.imageEnv.set('PATH', DEFAULT_PATH.slice(5));
    this.image.env = envList(this.imageEnv);
    this.env = baseStateEnv ? new Map(baseStateEnv) : new Map(this.imageEnv);
    if (!this.env.has('PATH')) this.env.set('PATH', this.imageEnv.get('PATH') as string);
    this.key = baseKey;
    this.lexer = { escapeToken: environment.escapeToken };
    this.scope = this.makeScope();
  }

  private readonly scope: StepScope;

  private makeScope(): StepScope {
    const image = this.image;
    const withDigest = (input: StepInput, digest: string | undefined): StepInput => (digest !== undefined ? { ...input, digest } : input);
    return {
      expand: (word) => this.expand(word),
      env: this.env,
      get workdir() {
        return image.workingDir || '/';
      },
      shellFor: (args) => this.shellFor(args, 'shell'),
      checked: (fn) => this.checked(fn),
      contextInput: (pattern) => {
        this.contextSources.add(pattern);
        return withDigest({ kind: 'context', ref: pattern }, this.environment.contextDigests.get(pattern));
      },
      stageInput: (index) => withDigest({ kind: 'stage', ref: String(index) }, this.environment.stageCacheKey(index)),
      imageInput: (reference, line) => {
        if (!this.imageDependencies.has(reference)) this.imageDependencies.set(reference, line);
        return { kind: 'image', ref: reference };
      },
      secret: (id) => this.secrets.add(id),
    };
  }

  private expand(word: string): string {
    try {
      return expandString(word, this.env, this.lexer);
    } catch (err) {
      if (err instanceof ShellExpansionError) throw new CommandError(err.message, undefined, 'ExpansionError');
      throw err;
    }
  }

  private expandWords(word: string): string[] {
    try {
      return expandWord(word, this.env, this.lexer).words;
    } catch (err) {
      if (err instanceof ShellExpansionError) throw new CommandError(err.message, undefined, 'ExpansionError');
      throw err;
    }
  }

  private cachedContext: StepContext | undefined;
  private fingerprinted: { context: StepContext; digest: string } | undefined;
  /** RUN contexts with the proxy build args added, to the context without them (what the cache key covers). */
  private readonly withoutProxies = new WeakMap<StepContext, StepContext>();

  /** Computed once per distinct context: steps sharing it then hash 71 bytes instead of the whole env. */
  private fingerprint(context: StepContext): string {
    if (this.fingerprinted?.context !== context) this.fingerprinted = { context, digest: fingerprintOf(context) };
    return this.fingerprinted.digest;
  }

  /** The context is rebuilt only when env, user, workdir or shell changed (steps share it otherwise). */
  private context(forRun: boolean): StepContext {
    const user = this.image.user;
    const workdir = this.image.workingDir || '/';
    const shell = this.image.shell.length > 0 ? this.image.shell : DEFAULT_SHELL;
    let ctx = this.cachedContext;
    if (!ctx || this.envDirty || ctx.user !== user || ctx.workdir !== workdir || !sameStrings(ctx.shell, shell)) {
      ctx = { env: envList(this.env), user, workdir, shell: [...shell] };
      this.cachedContext = ctx;
      this.envDirty = false;
    }
    if (!forRun) return ctx;
    const proxies: string[] = [];
    for (const [k, v] of this.environment.buildArgs) if (PROXY_ARGS.has(k) && !this.env.has(k)) proxies.push(`${k}=${v}`);
    if (proxies.length === 0) return ctx;
    const proxied = { ...ctx, env: [...ctx.env, ...proxies] };
    this.withoutProxies.set(proxied, ctx);
    return proxied;
  }

  private shellFor(args: string[], form: 'shell' | 'exec'): string[] {
    if (form === 'exec') return args;
    return [...(this.image.shell.length > 0 ? this.image.shell : DEFAULT_SHELL), args.join(' ')];
  }

  /**
   * `expanded` is the canonical instruction; `extra` adds what it does not spell out (RUN script files,
   * COPY options), so the cache key covers the whole action without serialising it twice.
   */
  private push(command: Command, expanded: string, action: StepAction, inputs: StepInput[], context: StepContext, onBuildTrigger: boolean, extra = ''): void {
    // Docker keeps the predefined proxy args out of the cache unless an ARG declares them.
    const cached = this.withoutProxies.get(context) ?? context;
    const canonical = action.kind === 'config' ? [expanded] : [expanded, extra, this.fingerprint(cached)];
    this.key = stepCacheKey(this.key, canonical, inputs);
    this.steps.push({
      index: this.steps.length,
      line: command.src.line,
      endLine: command.src.endLine,
      instruction: command.kind,
      original: command.src.original,
      expanded,
      onBuildTrigger,
      context,
      action,
      inputs,
      cacheKey: this.key,
    });
  }

  /** Dispatches one instruction; `refs` are the resolved --from values of a COPY or RUN. */
  dispatch(command: Command, refs: readonly SourceRef[], onBuildTrigger = false): void {
    const context = this.context(command.kind === 'RUN');
    switch (command.kind) {
      case 'ENV':
      case 'LABEL': {
        if (command.pairs.some((p) => p.legacy)) this.environment.warn(command, 'LegacyKeyValueFormat', `"${command.kind} key=value" should be used instead of legacy "${command.kind} key value" format`);
        const pairs = command.pairs.map((p) => [this.expand(p.key), this.expand(p.value)] as const);
        if (command.kind === 'ENV') for (const [k] of pairs) this.warnIfSecretName(command, k);
        for (const [k, v] of pairs) {
          if (command.kind === 'LABEL') this.image.labels[k] = v;
          else {
            this.imageEnv.set(k, v);
            this.env.set(k, v);
            this.envDirty = true;
          }
        }
        if (command.kind === 'ENV') this.image.env = envList(this.imageEnv);
        this.push(command, `${command.kind} ${pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`, configAction(pairs.map(([k, v]) => `${k}=${v}`)), [], context, onBuildTrigger);
        return;
      }
      case 'MAINTAINER':
        this.image.labels.maintainer = command.maintainer;
        this.push(command, `MAINTAINER ${command.maintainer}`, configAction([command.maintainer]), [], context, onBuildTrigger);
        return;
      case 'ARG': {
        const parts: string[] = [];
        const values: string[] = [];
        for (const arg of command.args) {
          this.warnIfSecretName(command, arg.key);
          this.environment.consumedArgs.add(arg.key);
          let value: string | undefined;
          const override = this.environment.buildArgs.get(arg.key);
          if (override !== undefined) value = override;
          else if (arg.value !== undefined) value = this.expand(arg.value);
          else value = this.environment.globalArgs.get(arg.key);
          if (value !== undefined) {
            this.env.set(arg.key, value);
            this.envDirty = true;
          }
          parts.push(value === undefined ? arg.key : `${arg.key}=${JSON.stringify(value)}`);
          values.push(value === undefined ? arg.key : `${arg.key}=${value}`);
        }
        this.push(command, `ARG ${parts.join(' ')}`, configAction(values), [], context, onBuildTrigger);
        return;
      }
      case 'RUN': {
        const planned = planRun(command, refs, this.scope);
        this.push(command, planned.expanded, planned.action, planned.inputs, context, onBuildTrigger, planned.extra);
        return;
      }
      case 'CMD':
      case 'ENTRYPOINT': {
        this.usedOnce(command);
        if (command.form === 'shell' && this.image.shell.length === 0) {
          this.environment.warn(command, 'JSONArgsRecommended', `JSON arguments recommended for ${command.kind} to prevent unintended behavior related to OS signals`);
        }
        const argv = command.args.length === 0 ? [] : this.shellFor(command.args, command.form);
        if (command.kind === 'CMD') {
          this.image.cmd = argv;
          this.cmdSet = true;
        } else {
          this.image.entrypoint = argv;
          // Docker: an ENTRYPOINT drops a CMD inherited from the base, not one set earlier in this stage.
          if (!this.cmdSet) this.image.cmd = [];
        }
        this.push(command, `${command.kind} ${JSON.stringify(argv)}`, configAction(argv), [], context, onBuildTrigger);
        return;
      }
      case 'SHELL':
        this.image.shell = [...command.shell];
        this.push(command, `SHELL ${JSON.stringify(command.shell)}`, configAction([...command.shell]), [], context, onBuildTrigger);
        return;
      case 'WORKDIR': {
        const value = this.expand(command.value);
        // BuildKit checks only the first WORKDIR of the build chain: later relative ones follow from it.
        if (!this.workdirSet && !path.isAbsolute(value)) {
          this.environment.warn(command, 'WorkdirRelativePath', `Relative workdir "${value}" can have unexpected results if the base image changes`);
        }
        this.workdirSet = true;
        const dir = path.isAbsolute(value) ? path.normalize(value) : path.join('/', this.image.workingDir || '/', value);
        const cleaned = dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
        this.image.workingDir = cleaned;
        this.push(command, `WORKDIR ${cleaned}`, { kind: 'workdir', path: cleaned, createdWith: { user: this.image.user } }, [], context, onBuildTrigger);
        return;
      }
      case 'USER': {
        const user = this.expand(command.value);
        this.image.user = user;
        this.push(command, `USER ${user}`, configAction([user]), [], context, onBuildTrigger);
        return;
      }
      case 'STOPSIGNAL': {
        const signal = this.expand(command.value);
        this.checked(() => checkSignal(signal));
        this.image.stopSignal = signal;
        this.push(command, `STOPSIGNAL ${signal}`, configAction([signal]), [], context, onBuildTrigger);
        return;
      }
      case 'EXPOSE': {
        const specs = command.values.flatMap((v) => this.expandWords(v));
        const ports = new Set(this.image.exposedPorts);
        for (const spec of specs) for (const p of this.checked(() => exposedPorts(spec))) ports.add(p);
        this.image.exposedPorts = [...ports].sort();
        this.push(command, `EXPOSE ${specs.join(' ')}`, configAction(specs), [], context, onBuildTrigger);
        return;
      }
      case 'VOLUME': {
        const volumes = command.values.map((v) => this.expand(v));
        if (volumes.some((v) => v === '')) throw new CommandError('VOLUME specified can not be an empty string');
        for (const v of volumes) if (!this.image.volumes.includes(v)) this.image.volumes.push(v);
        this.push(command, `VOLUME ${JSON.stringify(volumes)}`, configAction(volumes), [], context, onBuildTrigger);
        return;
      }
      case 'HEALTHCHECK': {
        this.usedOnce(command);
        const { test, intervalNs, timeoutNs, startPeriodNs, startIntervalNs, retries } = command;
        this.image.healthcheck = { test: [...test], intervalNs, timeoutNs, startPeriodNs, startIntervalNs, retries };
        this.push(command, `HEALTHCHECK ${JSON.stringify(this.image.healthcheck)}`, configAction([...test]), [], context, onBuildTrigger);
        return;
      }
      case 'ONBUILD':
        this.image.onBuild.push(command.expression);
        this.push(command, `ONBUILD ${command.expression}`, configAction([command.expression]), [], context, onBuildTrigger);
        return;
      case 'COPY':
      case 'ADD': {
        const planned = planCopy(command, refs[0], this.scope);
        const action = planned.action;
        if (command.unpack === true && action.kind === 'copy' && action.urls.length > 0) {
          // BuildKit extracts a download only when --unpack=true asks; kindling's copy never extracts one.
          this.environment.warn(command, 'UnpackDownloadUnsupported', `ADD --unpack=true: kindling does not extract downloaded archives yet, so ${action.urls.map((u) => u.url).join(', ')} lands as the archive file (download and extract it in a RUN step instead)`);
        }
        this.push(command, planned.expanded, planned.action, planned.inputs, context, onBuildTrigger, planned.extra);
        return;
      }
      case 'FROM':
        throw new CommandError('FROM cannot be dispatched inside a stage');
    }
  }

  /** BuildKit's SecretsUsedInArgOrEnv: ARG and ENV values land in the image history or config. */
  private warnIfSecretName(command: Command, key: string): void {
    if (SECRET_NAME.test(key) && !NOT_SECRET_NAME.test(key)) {
      this.environment.warn(command, 'SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${command.kind} ${JSON.stringify(key)})`);
    }
  }

  /** The last CMD, ENTRYPOINT and HEALTHCHECK of this stage, for BuildKit's MultipleInstructionsDisallowed. */
  private readonly lastOfKind = new Map<string, Command>();

  /** Warns at the earlier instruction (the one that has no effect), as BuildKit does. */
  private usedOnce(command: Command): void {
    const previous = this.lastOfKind.get(command.kind);
    if (previous) this.environment.warn(previous, 'MultipleInstructionsDisallowed', `Multiple ${command.kind} instructions should not be used in the same stage because only the last one will be used`);
    this.lastOfKind.set(command.kind, command);
  }

  checked<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigValueError || err instanceof MountError) throw new CommandError(err.message, undefined, 'InvalidValue');
      throw err;
    }
  }

  /** The state a stage built FROM this one starts with (BuildKit carries the ARG-extended env over). */
  finalStateEnv(): ReadonlyMap<string, string> {
    return this.env;
  }
}
