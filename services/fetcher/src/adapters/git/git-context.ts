import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@kindling/runtime';
import type { ContextSource, FetchLimits, LoadedContext } from '../../domain/build-context.ts';
import { type ContextEntry, ContextIndex, keptEntries } from '../../domain/context-index.ts';
import type { Digest } from '../../domain/digest.ts';
import { DockerignoreMatcher } from '../../domain/dockerignore.ts';
import {
  DomainError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  UnavailableError,
} from '../../domain/errors.ts';
import { type GitSource, parseGitSource } from '../../domain/git-url.ts';
import { checkContextLimits, IndexedContextFiles, locateDockerfile } from '../../domain/indexed-context.ts';
import { type NetworkPolicy, redactUrl } from '../../domain/network-policy.ts';
import type { BlobStore } from '../../ports/blob-store.ts';
import type { ContextLoader } from '../../ports/context-loader.ts';
import type { HostResolver } from '../../ports/host-resolver.ts';
import type { HttpSource } from '../../ports/http-source.ts';
import { systemHostResolver } from '../dns/system-host-resolver.ts';
import { type GitPinning, pinGitRemote } from './git-pinning.ts';
import { CatFileBatchReader, GitCommandError, type GitRunOptions, runGit } from './git-process.ts';

type GitRequest = Extract<ContextSource, { kind: 'git' }>;

interface TreeEntry extends ContextEntry {
  oid: string;
}

/** Git contexts through the git binary: a shallow fetch into a temporary bare repository, read without checkout. */
export class GitContextLoader implements ContextLoader<GitRequest> {
  constructor(
    private readonly blobs: BlobStore,
    private readonly policy: NetworkPolicy,
    private readonly limits: FetchLimits,
    private readonly log: Logger,
    /** Finds where an HTTP(S) repository really is, under the network policy at every redirect. */
    private readonly http: HttpSource,
    /** How git reaches ssh remotes: key, known hosts and options live here, never in URLs. */
    private readonly sshCommand = 'ssh -o BatchMode=yes',
    /** Resolves the remote's host once; git is then pinned to the checked addresses. */
    private readonly resolveHost: HostResolver = systemHostResolver,
  ) {}

  async load(request: GitRequest, signal: AbortSignal): Promise<LoadedContext> {
    const parsed = parseGitSource(request.url, this.policy);
    // Redirects are followed here under the policy; git then gets the final URL, pinned like any other.
    const source =
      parsed.transport === 'http' || parsed.transport === 'https'
        ? { ...parsed, remote: await this.httpRemote(parsed, signal) }
        : parsed;
    const dir = await mkdtemp(join(tmpdir(), 'kindling-git-'));
    const shownRoot = `${source.shown}#${source.ref ?? ''}${source.subdir === '.' ? '' : `:${source.subdir}`}`;
    try {
      const pinning = await pinGitRemote(source, this.policy, this.resolveHost, this.sshCommand, dir);
      const run: GitRunOptions = { cwd: dir, signal, env: gitEnv(dir, this.sshCommand, pinning) };
      await runGit(['init', '--bare', '--quiet'], run);
      const commit = await this.fetchCommit(source, run);
      this.log.info({ remote: source.shown, ref: source.ref, commit }, 'git context fetched');
      const tree = await this.listTree(commit, source, run);
      const index = new ContextIndex(tree.values());
      const { dockerfile, dockerfilePath, ignore, ignorePath } = locateDockerfile(
        index,
        request.dockerfilePath,
        shownRoot,
      );
      const [dockerfileText, ignoreText] = await Promise.all([
        dockerfile ? this.readSmallBlob((dockerfile as TreeEntry).oid, run) : Promise.resolve(''),
        ignore ? this.readSmallBlob((ignore as TreeEntry).oid, run) : Promise.resolve(''),
      ]);
      const matcher = DockerignoreMatcher.fromText(ignoreText);
      const kept = keptEntries(tree.values(), matcher) as TreeEntry[];
      checkContextLimits(kept, this.limits, shownRoot);
      await this.storeBlobs(kept, run, signal);
      return {
        kind: 'git',
        displayRoot: shownRoot,
        dockerfile: dockerfileText,
        dockerfilePath,
        dockerignore: ignoreText,
        dockerignorePath: ignorePath,
        gitCommit: commit,
        identity: `git\n${source.shown}\n${commit}\n${source.subdir}\n${dockerfilePath}\n${dockerfileText}\n${ignoreText}`,
        files: new IndexedContextFiles(new ContextIndex(kept), this.limits),
      };
    } catch (err) {
      throw gitError(err, source);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * git follows HTTP redirects by itself, past the host policy and the link-local
   * refusal. So the fetcher asks for the repository's ref advertisement first,
   * checking every hop, and hands git the final URL with redirects turned off.
   */
  private async httpRemote(source: GitSource, signal: AbortSignal): Promise<string> {
    const given = new URL(source.remote);
    const probe = new URL(given);
    probe.pathname = `${probe.pathname.replace(/\/*$/u, '')}/info/refs`;
    probe.search = '?service=git-upload-pack';
    probe.hash = '';
    let res;
    try {
      res = await this.http.get(probe, signal);
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`git repository ${source.shown} was not found (its info/refs is 404)`);
      }
      throw err;
    }
    res.discard();
    const final = new URL(res.finalUrl);
    if (!final.pathname.endsWith('/info/refs')) {
      throw new FailedPreconditionError(
        `git repository ${source.shown} redirected to ${redactUrl(final)}, which is not a git repository`,
      );
    }
    final.pathname = final.pathname.slice(0, -'/info/refs'.length);
    final.search = '';
    // Credentials stay with the origin they were given for.
    if (final.origin === given.origin) {
      final.username = given.username;
      final.password = given.password;
    }
    if (final.href !== given.href) {
      this.log.info({ remote: source.shown, location: redactUrl(final) }, 'git remote redirected');
    }
    return final.href;
  }

  private async fetchCommit(source: GitSource, run: GitRunOptions): Promise<string> {
    const ref = source.ref ?? 'HEAD';
    try {
      await runGit(['fetch', '--depth=1', '--no-tags', '--quiet', '--', source.remote, ref], run);
      return (await runGit(['rev-parse', '--verify', 'FETCH_HEAD^{commit}'], run)).toString().trim();
    } catch (err) {
      // Servers that refuse unadvertised commits in a shallow fetch: fetch everything, then look the commit up.
      if (!(err instanceof GitCommandError) || !/^[0-9a-f]{4,64}$/iu.test(ref)) throw err;
      await runGit(
        [
          'fetch',
          '--quiet',
          '--',
          source.remote,
          '+refs/heads/*:refs/remotes/origin/*',
          '+refs/tags/*:refs/tags/*',
        ],
        run,
      );
      try {
        return (await runGit(['rev-parse', '--verify', `${ref}^{commit}`], run)).toString().trim();
      } catch {
        throw new NotFoundError(`git ref "${ref}" is not a branch, tag or commit of ${source.shown}`);
      }
    }
  }

  private async listTree(
    commit: string,
    source: GitSource,
    run: GitRunOptions,
  ): Promise<Map<string, TreeEntry>> {
    const treeish = source.subdir === '.' ? commit : `${commit}:${source.subdir}`;
    let out: Buffer;
    try {
      out = await runGit(['ls-tree', '-r', '-t', '-l', '-z', '--full-tree', treeish], run, 1024 ** 3);
    } catch (err) {
      if (err instanceof GitCommandError && /not a (valid object name|tree object)/iu.test(err.stderr)) {
        throw new NotFoundError(
          `directory "${source.subdir}" does not exist at ${commit.slice(0, 12)} of ${source.shown}`,
        );
      }
      throw err;
    }
    const entries = new Map<string, TreeEntry>();
    for (const record of out.toString('utf8').split('\0')) {
      if (record === '') continue;
      const tab = record.indexOf('\t');
      const [mode = '', type = '', oid = '', size = ''] = record.slice(0, tab).split(/ +/u);
      const path = record.slice(tab + 1);
      const base = { path, oid, uid: 0, gid: 0, mtimeMs: 0, size: 0 };
      if (type === 'tree') entries.set(path, { ...base, type: 'dir', mode: 0o755 });
      else if (type === 'blob' && mode === '120000')
        entries.set(path, { ...base, type: 'symlink', mode: 0o777 });
      else if (type === 'blob')
        entries.set(path, {
          ...base,
          type: 'file',
          mode: mode === '100755' ? 0o755 : 0o644,
          size: Number(size),
        });
      // type 'commit' is a submodule: docker does not fetch those either.
    }
    return entries;
  }

  private async readSmallBlob(oid: string, run: GitRunOptions): Promise<string> {
    return (await runGit(['cat-file', 'blob', oid], run, this.limits.maxDockerfileSize)).toString('utf8');
  }

  /** Streams every kept file through one `git cat-file --batch` into the blob store; reads symlink targets. */
  private async storeBlobs(entries: TreeEntry[], run: GitRunOptions, signal: AbortSignal): Promise<void> {
    const wanted = entries.filter((e) => e.type !== 'dir');
    if (wanted.length === 0) return;
    const oids = [...new Set(wanted.map((e) => e.oid))];
    const { blobs, limits } = this;
    const child = spawn('git', ['cat-file', '--batch'], {
      cwd: run.cwd,
      env: run.env,
      signal,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.on('error', () => {});
    child.stdin.end(oids.join('\n') + '\n');
    const reader = new CatFileBatchReader(child.stdout);
    const isLink = new Set(wanted.filter((e) => e.type === 'symlink').map((e) => e.oid));
    const byOid = new Map<string, { digest: Digest; text?: string }>();
    try {
      await readAll();
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    async function readAll(): Promise<void> {
      for (let i = 0; i < oids.length; i++) {
        const { oid, size } = await reader.header();
        if (isLink.has(oid)) {
          const parts: Buffer[] = [];
          for await (const p of reader.content(size)) parts.push(Buffer.from(p));
          const text = Buffer.concat(parts).toString('utf8');
          byOid.set(oid, { digest: '' as Digest, text });
          continue;
        }
        const blob = await blobs.ingest(reader.content(size), {
          maxSize: limits.maxFileSize,
          signal,
          label: `git object ${oid}`,
        });
        byOid.set(oid, { digest: blob.digest });
      }
    }
    const code = await exited;
    if (code !== 0) throw new GitCommandError(['cat-file', '--batch'], code, stderr);
    for (const e of wanted) {
      const got = byOid.get(e.oid)!;
      if (e.type === 'symlink') e.linkTarget = got.text;
      else e.digest = got.digest;
    }
  }
}

function gitEnv(home: string, sshCommand: string, pinning: GitPinning): NodeJS.ProcessEnv {
  // Redirects were followed (under the network policy) before git runs: git must not follow others.
  const config: [string, string][] = [['http.followRedirects', 'false'], ...pinning.config];
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    // git:// only reaches git when the policy let it through parseGitSource.
    GIT_ALLOW_PROTOCOL: 'http:https:ssh:git',
    GIT_SSH_COMMAND: pinning.sshOptions ? `${sshCommand} ${pinning.sshOptions}` : sshCommand,
    GIT_CONFIG_COUNT: String(config.length),
    ...Object.fromEntries(
      config.flatMap(([key, value], i) => [
        [`GIT_CONFIG_KEY_${i}`, key],
        [`GIT_CONFIG_VALUE_${i}`, value],
      ]),
    ),
    ...pinning.env,
    LC_ALL: 'C',
  };
}

/** Maps git's complaints to what the client should do; credentials were redacted by runGit. */
function gitError(err: unknown, source: GitSource): unknown {
  if (err instanceof DomainError) return err;
  if (!(err instanceof GitCommandError)) {
    if ((err as Error).name === 'AbortError')
      return new UnavailableError(`fetching ${source.shown} was aborted (time limit or client cancel)`);
    return err;
  }
  const text = err.stderr;
  if (/couldn't find remote ref|not our ref|unadvertised object|no such ref|invalid refspec/iu.test(text)) {
    return new NotFoundError(
      `git ref "${source.ref ?? 'HEAD'}" is not a branch, tag or commit of ${source.shown}`,
    );
  }
  if (
    /repository .*not found|does not appear to be a git repository|not exported|returned error: 404|HTTP 404/iu.test(
      text,
    )
  ) {
    return new NotFoundError(`git repository ${source.shown} was not found`);
  }
  if (
    /authentication failed|could not read (username|password)|permission denied|returned error: 40[13]/iu.test(
      text,
    )
  ) {
    return new PermissionDeniedError(`git refused access to ${source.shown}: credentials missing or wrong`);
  }
  return new UnavailableError(
    `git could not fetch ${source.shown}: ${text.trim().split('\n').slice(-2).join(' | ')}`,
  );
}
