/**
 * Plays one stage's instructions the way BuildKit dispatches them: variable expansion with the
 * stage's env and ARGs, image config updates, and one PlannedStep (with its cache key) per
 * instruction. Errors are thrown as CommandError and reported by the caller.
 */
import path from 'node:path/posix';
import { PROXY_ARGS } from './build-args.ts';
import { sha256, stepCacheKey } from './cache-key.ts';
import { checkSignal, ConfigValueError, exposedPorts, parseChmod } from './image-config.ts';
import { CommandError, type Command, type CopyCommand, type RunCommand } from './instructions.ts';
import { parseHeredocMarker, chompHeredoc } from './instruction-source.ts';
import type { ImageMetadata, InlineFile, PlannedStep, RunMount, StepAction, StepCacheKey, StepContext, StepInput } from './plan.ts';
import { MountError, parseRunMount } from './run-mounts.ts';
import { expandString, expandWord, ShellExpansionError, type LexerOptions } from './shell-lexer.ts';
import type { SourceRef } from './stage-graph.ts';

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
const isUrl = (s: string): boolean => s.startsWith('http://') || s.startsWith('https://');

export function isGitSource(src: string): boolean {
  if (src.startsWith('git://') || src.startsWith('git@') || src.startsWith('ssh://') || src.startsWith('github.com/')) return true;
  if (!isUrl(src)) return false;
  const pathPart = src.split(/[#?]/)[0] as string;
  return pathPart.endsWith('.git');
}

/** A source path relative to the root of the context (or of the stage it is copied from). */
function contextPattern(source: string): string {
  const normalized = path.normalize('/' + source).slice(1);
  return source.endsWith('/') && normalized !== '' && !normalized.endsWith('/') ? normalized + '/' : normalized || '.';
}

/** BuildKit's pathRelativeToWorkingDir, keeping a trailing slash (it makes the destination a directory). */
function destinationPath(workdir: string, dest: string): string {
  const keepSlash = dest.endsWith('/') || dest === '.' || dest === '' || dest.endsWith('/.');
  const joined = path.isAbsolute(dest) ? path.normalize(dest) : path.join('/', workdir, dest === '' ? '.' : dest);
  return keepSlash && !joined.endsWith('/') ? joined + '/' : joined;
}

/** `type=cache,target=/x,...`: a mount as BuildKit's flag syntax spells it. */
function describeMount(mount: RunMount): string {
  let out = '';
  for (const [k, v] of Object.entries(mount)) out += `${out ? ',' : ''}${k}=${typeof v === 'number' && k === 'mode' ? '0' + v.toString(8) : String(v)}`;
  return out;
}

const configAction = (values: string[]): StepAction => ({ kind: 'config', values });

const fingerprints = new WeakMap<StepContext, string>();

/** What a RUN or COPY depends on besides its own arguments; computed once per distinct context. */
function contextFingerprint(context: StepContext): string {
  let fingerprint = fingerprints.get(context);
  if (fingerprint === undefined) {
    fingerprint = `${context.user}\n${context.workdir}\n${context.shell.join('\0')}\n${context.env.join('\0')}`;
    fingerprints.set(context, fingerprint);
  }
  return fingerprint;
}

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

  /** The context is rebuilt only when env, user, workdir or shell changed (steps share it otherwise). */
  private context(forRun: boolean): StepContext {
    const user = this.image.user;
    const workdir = this.image.workingDir || '/';
    const shell = this.image.shell.length > 0 ? this.image.shell : DEFAULT_SHELL;
    let ctx = this.cachedContext;
    if (!ctx || this.envDirty || ctx.user !== user || ctx.workdir !== workdir || ctx.shell.join('\0') !== shell.join('\0')) {
      ctx = { env: envList(this.env), user, workdir, shell: [...shell] };
      this.cachedContext = ctx;
      this.envDirty = false;
    }
    if (!forRun) return ctx;
    const proxies: string[] = [];
    for (const [k, v] of this.environment.buildArgs) if (PROXY_ARGS.has(k) && !this.env.has(k)) proxies.push(`${k}=${v}`);
    return proxies.length === 0 ? ctx : { ...ctx, env: [...ctx.env, ...proxies] };
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
    const canonical = action.kind === 'config' ? [expanded] : [expanded, extra, contextFingerprint(context)];
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
        const pairs = command.pairs.map((p) => [this.expand(p.key), this.expand(p.value)] as const);
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
      case 'RUN':
        this.dispatchRun(command, refs, context, onBuildTrigger);
        return;
      case 'CMD':
      case 'ENTRYPOINT': {
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
      case 'ADD':
        this.dispatchCopy(command, refs[0], context, onBuildTrigger);
        return;
      case 'FROM':
        throw new CommandError('FROM cannot be dispatched inside a stage');
    }
  }

  private checked<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigValueError || err instanceof MountError) throw new CommandError(err.message, undefined, 'InvalidValue');
      throw err;
    }
  }

  private dispatchRun(command: RunCommand, refs: readonly SourceRef[], context: StepContext, onBuildTrigger: boolean): void {
    const workdir = this.image.workingDir || '/';
    let sshIndex = 0;
    const inputs: StepInput[] = [];
    let refIndex = 0;
    const mounts: RunMount[] = command.mounts.map((value) => {
      const mount = this.checked(() => parseRunMount(value, (w) => this.expand(w), workdir, sshIndex));
      if (mount.type === 'ssh') sshIndex++;
      if (mount.type === 'secret') this.secrets.add(mount.id);
      if ((mount.type === 'bind' || mount.type === 'cache') && mount.from !== undefined) {
        const ref = refs[refIndex++];
        if (ref?.kind === 'stage') {
          mount.from = `stage:${ref.index}`;
          const digest = this.environment.stageCacheKey(ref.index);
          inputs.push(digest !== undefined ? { kind: 'stage', ref: String(ref.index), digest } : { kind: 'stage', ref: String(ref.index) });
        } else if (ref?.kind === 'image') {
          if (!this.imageDependencies.has(ref.reference)) this.imageDependencies.set(ref.reference, command.src.line);
          inputs.push({ kind: 'image', ref: ref.reference });
        }
      } else if (mount.type === 'bind') {
        const pattern = contextPattern(mount.source);
        this.contextSources.add(pattern);
        inputs.push(this.contextInput(pattern));
      }
      return mount;
    });
    const network = command.network ?? 'default';
    if (network !== 'default' && network !== 'none' && network !== 'host') throw new CommandError(`unsupported network mode "${network}" (use default, none or host)`);
    const security = command.security ?? 'sandbox';
    if (security !== 'sandbox' && security !== 'insecure') throw new CommandError(`unsupported security mode "${security}" (use sandbox or insecure)`);

    let args = command.args;
    const files: InlineFile[] = [];
    if (command.heredocs.length > 0) {
      const first = command.heredocs[0] as (typeof command.heredocs)[number];
      if (args.length === 1 && parseHeredocMarker(args[0] as string)) {
        const data = first.chomp ? chompHeredoc(first.content) : first.content;
        if (data.startsWith('#!')) {
          const file = path.join('/dev/pipes/', first.name);
          files.push({ name: first.name, path: file, content: data, mode: 0o755 });
          args = [file];
        } else args = [data];
      } else {
        let full = args[0] ?? '';
        for (const doc of command.heredocs) full += '\n' + doc.content + doc.name;
        args = [full];
      }
    }
    const argv = command.form === 'shell' ? this.shellFor(args, 'shell') : [...args];
    let flags = '';
    for (const m of mounts) flags += `--mount=${describeMount(m)} `;
    if (network !== 'default') flags += `--network=${network} `;
    if (security !== 'sandbox') flags += `--security=${security} `;
    this.push(command, `RUN ${flags}${JSON.stringify(argv)}`, { kind: 'run', argv, form: command.form, files, mounts, heredocs: command.heredocs.map((h) => ({ name: h.name, content: h.content, stripTabs: h.chomp, quoted: !h.expand })), network, security }, inputs, context, onBuildTrigger, files.map((f) => `${f.path}\0${f.mode}\0${f.content}`).join('\0'));
  }

  private contextInput(pattern: string): StepInput {
    const digest = this.environment.contextDigests.get(pattern);
    return digest !== undefined ? { kind: 'context', ref: pattern, digest } : { kind: 'context', ref: pattern };
  }

  private dispatchCopy(command: CopyCommand, ref: SourceRef | undefined, context: StepContext, onBuildTrigger: boolean): void {
    const k = command.kind;
    const sources = command.sources.map((s) => this.expand(s));
    const dest = this.expand(command.dest);
    const chown = command.chown !== undefined ? this.expand(command.chown) : undefined;
    const chmodText = command.chmod !== undefined ? this.expand(command.chmod) : undefined;
    const chmod = chmodText !== undefined && chmodText !== '' ? this.checked(() => parseChmod(chmodText)) : undefined;
    const checksum = command.checksum !== undefined ? this.expand(command.checksum) : undefined;
    const exclude = command.exclude.map((e) => this.expand(e));
    if (sources.length + command.inline.length > 1 && !dest.endsWith('/')) {
      throw new CommandError(`When using ${k} with more than one source file, the destination must be a directory and end with a /`);
    }
    const destination = destinationPath(this.image.workingDir || '/', dest);
    const urls: { url: string; checksum?: string }[] = [];
    const git: { url: string; keepGitDir: boolean; checksum?: string }[] = [];
    const patterns: string[] = [];
    const inputs: StepInput[] = [];
    let origin: Extract<StepAction, { kind: 'copy' }>['origin'] = { kind: 'context' };
    if (ref?.kind === 'stage') origin = { kind: 'stage', stageIndex: ref.index };
    else if (ref?.kind === 'image') {
      origin = { kind: 'image', reference: ref.reference };
      if (!this.imageDependencies.has(ref.reference)) this.imageDependencies.set(ref.reference, command.src.line);
    }
    if (checksum !== undefined) {
      if (!/^sha256:[a-f0-9]{64}$/.test(checksum) && !/^[a-f0-9]{7,40}$/.test(checksum)) throw new CommandError(`invalid checksum "${checksum}": use sha256:<64 hex digits> (or a git commit for a git source)`);
      if (!sources.every((s) => isUrl(s) || isGitSource(s))) throw new CommandError("checksum can't be specified for non-HTTP(S) sources");
    }
    for (const source of sources) {
      if (k === 'ADD' && isGitSource(source)) {
        const entry: { url: string; keepGitDir: boolean; checksum?: string } = { url: source, keepGitDir: command.keepGitDir };
        if (checksum !== undefined) entry.checksum = checksum;
        git.push(entry);
        inputs.push(checksum !== undefined ? { kind: 'git', ref: source, digest: checksum } : { kind: 'git', ref: source });
      } else if (k === 'ADD' && isUrl(source)) {
        const entry: { url: string; checksum?: string } = { url: source };
        if (checksum !== undefined) entry.checksum = checksum;
        urls.push(entry);
        inputs.push(checksum !== undefined ? { kind: 'url', ref: source, digest: checksum } : { kind: 'url', ref: source });
      } else {
        if (k === 'COPY' && isUrl(source)) throw new CommandError(`COPY cannot fetch URLs (${source}): use ADD for a remote file`);
        const pattern = contextPattern(source);
        patterns.push(pattern);
        if (origin.kind === 'context') {
          this.contextSources.add(pattern);
          inputs.push(this.contextInput(pattern));
        }
      }
    }
    if (origin.kind === 'stage') {
      const digest = this.environment.stageCacheKey(origin.stageIndex);
      inputs.push(digest !== undefined ? { kind: 'stage', ref: String(origin.stageIndex), digest } : { kind: 'stage', ref: String(origin.stageIndex) });
    } else if (origin.kind === 'image') inputs.push({ kind: 'image', ref: origin.reference });
    const inline: InlineFile[] = command.inline.map((doc) => {
      let content = doc.content;
      if (doc.expand) {
        try {
          content = expandWord(content, this.env, { escapeToken: '\\', skipProcessQuotes: true }).result;
        } catch (err) {
          if (err instanceof ShellExpansionError) throw new CommandError(err.message, undefined, 'ExpansionError');
          throw err;
        }
      }
      const file = destination.endsWith('/') ? destination + doc.name : destination;
      inputs.push({ kind: 'inline', ref: doc.name, digest: sha256(content) });
      return { name: doc.name, path: file, content, mode: chmod ?? 0o644 };
    });
    const action: StepAction = {
      kind: 'copy', instruction: k, origin, sources: patterns, urls, git, inline, destination,
      link: command.link, parents: command.parents, exclude, unpackArchives: k === 'ADD' && command.unpack !== false,
    };
    if (chown !== undefined && chown !== '') action.chown = chown;
    if (chmod !== undefined) action.chmod = chmod;
    const flags = [
      origin.kind === 'stage' ? `--from=stage:${origin.stageIndex}` : origin.kind === 'image' ? `--from=${origin.reference}` : '',
      action.chown !== undefined ? `--chown=${action.chown}` : '',
      chmod !== undefined ? `--chmod=${chmod.toString(8).padStart(4, '0')}` : '',
      command.link ? '--link' : '',
      ...exclude.map((e) => `--exclude=${e}`),
      checksum !== undefined ? `--checksum=${checksum}` : '',
    ].filter((f) => f !== '');
    const all = [...sources, ...command.inline.map((d) => `<<${d.name}`)];
    const extra = `parents=${command.parents} unpack=${action.unpackArchives} keep-git-dir=${command.keepGitDir} ${inline.map((f) => `${f.path}:${f.mode}`).join(' ')}`;
    this.push(command, `${k} ${flags.join(' ')}${flags.length ? ' ' : ''}${JSON.stringify(all)} ${destination}`, action, inputs, context, onBuildTrigger, extra);
  }

  /** The state a stage built FROM this one starts with (BuildKit carries the ARG-extended env over). */
  finalStateEnv(): ReadonlyMap<string, string> {
    return this.env;
  }
}
