/** COPY and ADD: sources (context patterns, stages, images, URLs, git), destination, options. */
import path from 'node:path/posix';
import { sha256 } from './cache-key.ts';
import { parseChmod } from './image-config.ts';
import { CommandError, type CopyCommand } from './instructions.ts';
import type { InlineFile, StepAction, StepInput } from './plan.ts';
import { expandWord, ShellExpansionError } from './shell-lexer.ts';
import type { SourceRef } from './stage-graph.ts';
import type { PlannedAction, StepScope } from './step-scope.ts';

const isUrl = (s: string): boolean => s.startsWith('http://') || s.startsWith('https://');

/**
 * A git source as BuildKit's ParseGitRef tells one: a git:// or ssh:// URL (scheme in any case), an
 * http(s) URL whose path ends in .git, or scp-like user@host:path. `github.com/x/y` is a local path
 * to COPY and ADD (BuildKit accepts that form only for build contexts).
 */
export function isGitSource(src: string): boolean {
  const scheme = /^([a-zA-Z0-9]+):\/\//.exec(src)?.[1]?.toLowerCase();
  if (scheme === undefined) return /^[a-zA-Z0-9-_]+@[a-zA-Z0-9-.]+:/.test(src);
  if (scheme === 'git' || scheme === 'ssh') return true;
  if (scheme !== 'http' && scheme !== 'https') return false;
  const pathPart = src.split(/[#?]/)[0] as string;
  return pathPart.endsWith('.git');
}

/** A source path relative to the root of the context (or of the stage it is copied from). */
export function contextPattern(source: string): string {
  const normalized = path.normalize('/' + source).slice(1);
  return source.endsWith('/') && normalized !== '' && !normalized.endsWith('/') ? normalized + '/' : normalized || '.';
}

/**
 * A COPY --parents source keeps its "/./" pivot (BuildKit cuts the source there: what is above
 * is not recreated at the destination), so each side is cleaned on its own.
 */
export function parentsPattern(source: string): string {
  const cut = source.indexOf('/./');
  if (cut === -1) return contextPattern(source);
  const pivot = contextPattern(source.slice(0, cut));
  const below = contextPattern(source.slice(cut + 3));
  return pivot === '.' ? below : `${pivot}/./${below}`;
}

/** BuildKit's pathRelativeToWorkingDir, keeping a trailing slash (it makes the destination a directory). */
function destinationPath(workdir: string, dest: string): string {
  const keepSlash = dest.endsWith('/') || dest === '.' || dest === '' || dest.endsWith('/.');
  const joined = path.isAbsolute(dest) ? path.normalize(dest) : path.join('/', workdir, dest === '' ? '.' : dest);
  return keepSlash && !joined.endsWith('/') ? joined + '/' : joined;
}

export function planCopy(command: CopyCommand, ref: SourceRef | undefined, scope: StepScope): PlannedAction {
  const k = command.kind;
  const sources = command.sources.map((s) => scope.expand(s));
  const dest = scope.expand(command.dest);
  const chown = command.chown !== undefined ? scope.expand(command.chown) : undefined;
  const chmodText = command.chmod !== undefined ? scope.expand(command.chmod) : undefined;
  const chmod = chmodText !== undefined && chmodText !== '' ? scope.checked(() => parseChmod(chmodText)) : undefined;
  const checksum = command.checksum !== undefined ? scope.expand(command.checksum) : undefined;
  const exclude = command.exclude.map((e) => scope.expand(e));
  if (sources.length + command.inline.length > 1 && !dest.endsWith('/')) {
    throw new CommandError(`When using ${k} with more than one source file, the destination must be a directory and end with a /`);
  }
  const destination = destinationPath(scope.workdir, dest);
  const urls: { url: string; checksum?: string }[] = [];
  const git: { url: string; keepGitDir: boolean; checksum?: string }[] = [];
  const patterns: string[] = [];
  const inputs: StepInput[] = [];
  let origin: Extract<StepAction, { kind: 'copy' }>['origin'] = { kind: 'context' };
  if (ref?.kind === 'stage') origin = { kind: 'stage', stageIndex: ref.index };
  else if (ref?.kind === 'image') {
    origin = { kind: 'image', reference: ref.reference };
  }
  if (checksum !== undefined) {
    if (!/^sha256:[a-f0-9]{64}$/.test(checksum) && !/^[a-f0-9]{7,40}$/.test(checksum)) throw new CommandError(`invalid checksum "${checksum}": use sha256:<64 hex digits> (or a git commit for a git source)`);
    // One checksum pins one download, so BuildKit refuses it beside a second source.
    if (sources.length !== 1) throw new CommandError("checksum can't be specified for multiple sources (give each download its own ADD --checksum)");
    if (!sources.every((s) => isUrl(s) || isGitSource(s))) throw new CommandError("checksum can't be specified for non-HTTP(S) sources");
  }
  for (const source of sources) {
    if (k === 'COPY' && isGitSource(source)) throw new CommandError(`source can't be a git ref for COPY (${source}): use ADD for a git repository`);
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
      const pattern = command.parents ? parentsPattern(source) : contextPattern(source);
      patterns.push(pattern);
      if (origin.kind === 'context') inputs.push(scope.contextInput(pattern));
    }
  }
  if (origin.kind === 'stage') inputs.push(scope.stageInput(origin.stageIndex));
  else if (origin.kind === 'image') inputs.push(scope.imageInput(origin.reference, command.src.line));
  const inline: InlineFile[] = command.inline.map((doc) => {
    let content = doc.content;
    if (doc.expand) {
      try {
        content = expandWord(content, scope.env, { escapeToken: '\\', skipProcessQuotes: true }).result;
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
  return { expanded: `${k} ${flags.join(' ')}${flags.length ? ' ' : ''}${JSON.stringify(all)} ${destination}`, action, inputs, extra };
}
