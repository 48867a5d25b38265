import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FileType } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { PermissionDeniedError } from '../src/domain/errors.ts';
import { git, startGitHttpServer } from './git-http.ts';
import { PINNED_ADDRESS, pinnedGitLoader, scriptedResolver, startPinnedRelay } from './pinned-git.ts';
import { grpcCode, startHttpServer, startTestFetcher, tempDir } from './support.ts';

test('git contexts over smart HTTP: refs, subdir, exec bits, symlinks', async (t) => {
  const base = await tempDir(t);
  const work = join(base, 'work');
  await mkdir(join(work, 'sub'), { recursive: true });
  git(work, 'init', '-q', '-b', 'main');
  await writeFile(join(work, 'Dockerfile'), 'FROM debian\nCOPY run.sh /\n');
  await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho v1\n');
  await chmod(join(work, 'run.sh'), 0o755);
  await symlink('run.sh', join(work, 'run-link'));
  await writeFile(join(work, 'sub', 'Dockerfile'), 'FROM debian\nCOPY app.txt /\n');
  await writeFile(join(work, 'sub', 'app.txt'), 'app v1\n');
  await writeFile(join(work, 'sub', 'secret.txt'), 'secret\n');
  await writeFile(join(work, 'sub', '.dockerignore'), 'secret.txt\n');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'v1');
  git(work, 'tag', 'v1');
  const v1 = git(work, 'rev-parse', 'HEAD');
  await writeFile(join(work, 'sub', 'app.txt'), 'app v2\n');
  git(work, 'commit', '-q', '-am', 'v2');
  const v2 = git(work, 'rev-parse', 'HEAD');
  git(work, 'checkout', '-q', '-b', 'feature');
  await writeFile(join(work, 'feature.txt'), 'feature\n');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'feature');
  const feature = git(work, 'rev-parse', 'HEAD');
  git(work, 'checkout', '-q', 'main');
  git(base, 'clone', '-q', '--bare', work, join(base, 'repos', 'app.git'));

  const server = await startGitHttpServer(t, join(base, 'repos'));
  const repo = `${server.url}/app.git`;
  const fetcher = await startTestFetcher(t);
  const resolveGit = (url: string) => fetcher.resolve({ source: { $case: 'git', value: { url } } });
  const appText = async (contextId: string) => {
    const listed = await fetcher.listFiles(contextId, ['app.txt']);
    return (await fetcher.readBlob(listed.sources[0]!.files[0]!.digest)).toString();
  };

  await t.test('branch, with file modes and symlinks from the tree', async () => {
    const ctx = await resolveGit(`${repo}#main`);
    assert.equal(ctx.gitCommit, v2);
    assert.equal(ctx.dockerfile, 'FROM debian\nCOPY run.sh /\n');
    const listed = await fetcher.listFiles(ctx.contextId, ['.']);
    const files = new Map(listed.sources[0]!.files.map((f) => [f.path, f]));
    assert.equal(files.get('run.sh')!.mode, 0o755);
    assert.equal(files.get('Dockerfile')!.mode, 0o644);
    assert.equal(files.get('run-link')!.type, FileType.FILE_TYPE_SYMLINK);
    assert.equal(files.get('run-link')!.linkTarget, 'run.sh');
    assert.equal(files.get('sub')!.type, FileType.FILE_TYPE_DIRECTORY);
    assert.ok(!files.has('feature.txt'));
    assert.equal((await fetcher.readBlob(files.get('run.sh')!.digest)).toString(), '#!/bin/sh\necho v1\n');
  });

  await t.test('default ref is the remote HEAD; other branches by name', async () => {
    assert.equal((await resolveGit(repo)).gitCommit, v2);
    assert.equal((await resolveGit(`${repo}#feature`)).gitCommit, feature);
  });

  await t.test('tag and commit refs, with a subdir as the context', async () => {
    const tagged = await resolveGit(`${repo}#v1:sub`);
    assert.equal(tagged.gitCommit, v1);
    assert.equal(tagged.dockerfile, 'FROM debian\nCOPY app.txt /\n');
    assert.equal(tagged.dockerignore, 'secret.txt\n');
    assert.equal(await appText(tagged.contextId), 'app v1\n');
    await assert.rejects(
      fetcher.listFiles(tagged.contextId, ['secret.txt']),
      (err) => grpcCode(err) === status.NOT_FOUND,
    );
    const pinned = await resolveGit(`${repo}#${v1}:sub`);
    assert.equal(pinned.gitCommit, v1);
    assert.equal(await appText(pinned.contextId), 'app v1\n');
    assert.equal(pinned.contextId, tagged.contextId, 'same content, same context id');
    const short = await resolveGit(`${repo}#${v2.slice(0, 10)}:sub`);
    assert.equal(short.gitCommit, v2);
  });

  await t.test('concurrent resolutions of one git context fetch it once', async () => {
    const fetches = () => server.hits.get('/app.git/git-upload-pack') ?? 0;
    let before = fetches();
    await resolveGit(`${repo}#feature`);
    const perResolve = fetches() - before;
    assert.ok(perResolve > 0);
    before = fetches();
    const all = await Promise.all(Array.from({ length: 5 }, () => resolveGit(`${repo}#feature`)));
    assert.equal(new Set(all.map((c) => c.contextId)).size, 1);
    assert.equal(fetches() - before, perResolve, 'five callers, one fetch');
  });

  await t.test('credentials in a git URL reach git but never the logs or errors', async () => {
    const withToken = repo.replace('http://', 'http://builder:g1t-s3cret@');
    const ctx = await resolveGit(`${withToken}#main`);
    assert.equal(ctx.gitCommit, v2);
    assert.doesNotMatch(ctx.displayRoot, /g1t-s3cret/);
    await assert.rejects(resolveGit(`${withToken}#no-such-branch`), (err) => {
      assert.doesNotMatch((err as Error).message, /g1t-s3cret/);
      return true;
    });
    for (const line of fetcher.logLines) assert.doesNotMatch(line, /g1t-s3cret/);
  });

  await t.test('unknown refs and subdirs are NOT_FOUND; escaping subdirs are refused', async () => {
    for (const url of [
      `${repo}#no-such-branch`,
      `${repo}#main:no/such/dir`,
      `${repo}#${'0'.repeat(40)}`,
      `${server.url}/missing.git`,
    ]) {
      await assert.rejects(resolveGit(url), (err) => {
        assert.equal(grpcCode(err), status.NOT_FOUND, `${url}: ${(err as Error).message}`);
        return true;
      });
    }
    await assert.rejects(
      resolveGit(`${repo}#main:../..`),
      (err) => grpcCode(err) === status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      resolveGit(`${repo}#--upload-pack=evil`),
      (err) => grpcCode(err) === status.INVALID_ARGUMENT,
    );
  });

  await t.test('git+http allowed without http: git contexts work, plain downloads do not', async () => {
    const gitOnly = await startTestFetcher(t, ['--allowed-schemes=git+http']);
    const ctx = await gitOnly.resolve({
      source: { $case: 'git', value: { url: `${repo.replace('http://', 'git+http://')}#v1:sub` } },
    });
    assert.equal(ctx.gitCommit, v1);
    await assert.rejects(
      gitOnly.resolve({ source: { $case: 'http', value: { dockerfileUrl: `${server.url}/Dockerfile` } } }),
      (err) => grpcCode(err) === status.INVALID_ARGUMENT,
    );
  });

  await t.test('redirects are followed under the host policy, not by git on its own', async () => {
    const gitPort = new URL(server.url).port;
    // A forwarder on 127.0.0.1: /moved/* goes to the git server by address, /aliased/* by the name localhost.
    const forwarder = await startHttpServer(t, (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const [, prefix = '', ...rest] = url.pathname.split('/');
      const host = prefix === 'moved' ? '127.0.0.1' : prefix === 'aliased' ? 'localhost' : '';
      if (!host) return res.writeHead(404).end();
      res.writeHead(301, { location: `http://${host}:${gitPort}/${rest.join('/')}${url.search}` }).end();
    });
    const moved = await resolveGit(`${forwarder.url}/moved/app.git#v1:sub`);
    assert.equal(moved.gitCommit, v1);
    assert.equal(await appText(moved.contextId), 'app v1\n');

    const strict = await startTestFetcher(t, ['--deny-hosts=localhost']);
    const gitHitsBefore = [...server.hits.values()].reduce((a, b) => a + b, 0);
    await assert.rejects(
      strict.resolve({ source: { $case: 'git', value: { url: `${forwarder.url}/aliased/app.git#main` } } }),
      (err) => {
        assert.equal(grpcCode(err), status.PERMISSION_DENIED);
        assert.match((err as Error).message, /host localhost .* deny list/);
        return true;
      },
    );
    assert.equal([...server.hits.values()].reduce((a, b) => a + b, 0), gitHitsBefore, 'nothing reached the denied host');
    assert.ok(forwarder.hits.get('/aliased/app.git/info/refs'));
  });

  await t.test('git connects only to the address the fetcher resolved and checked', async (t) => {
    const fetches = () => server.hits.get('/app.git/git-upload-pack') ?? 0;
    const relay = await startPinnedRelay(t, Number(new URL(server.url).port));
    const byName = `http://localhost:${relay.port}/app.git`;
    // DNS rebinding: the name answers the loopback address once, then a metadata address.
    const rebinding = scriptedResolver(PINNED_ADDRESS, '169.254.169.254');
    const load = await pinnedGitLoader(t, rebinding);
    const loaded = await load(`${byName}#v1:sub`);
    assert.equal(loaded.gitCommit, v1);
    assert.deepEqual(rebinding.asked, ['localhost'], 'resolved once for git');
    const relayed = relay.connections();
    assert.ok(relayed >= 2, 'the probe and git both went through the pinned address');

    const before = fetches();
    await assert.rejects(load(`${byName}#main`), (err) => {
      assert.ok(err instanceof PermissionDeniedError, String(err));
      assert.match(err.message, /resolves to 169\.254\.169\.254, a link-local\/metadata address/);
      return true;
    });
    assert.equal(fetches(), before, 'refused before git ran');

    // The fetcher's own request (finding the repository) checks its answer the same way, before connecting.
    const probeRefused = await pinnedGitLoader(t, scriptedResolver(PINNED_ADDRESS), {
      probeResolver: scriptedResolver('169.254.169.254'),
    });
    const relayedBefore = relay.connections();
    await assert.rejects(
      probeRefused(`${byName}#main`),
      (err) => err instanceof PermissionDeniedError && /169\.254\.169\.254/.test(err.message),
    );
    assert.equal(relay.connections(), relayedBefore, 'nothing connected');

    // A redirect to a name: the redirected host is the one resolved, checked and pinned.
    const forwarder = await startHttpServer(t, (req, res) => {
      res.writeHead(301, { location: `${byName}${(req.url ?? '').replace(/^\/moved\/app\.git/u, '')}` }).end();
    });
    const redirected = scriptedResolver(PINNED_ADDRESS);
    const moved = await (await pinnedGitLoader(t, redirected))(`${forwarder.url}/moved/app.git#main`);
    assert.equal(moved.gitCommit, v2);
    assert.deepEqual(redirected.asked, ['localhost']);
    assert.ok(fetches() > before);
  });
});

/** A free loopback port (git daemon cannot pick its own and report it). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

test('git:// (git daemon) only when --allowed-schemes lists git', async (t) => {
  const base = await tempDir(t);
  const work = join(base, 'work');
  await mkdir(join(work, 'sub'), { recursive: true });
  git(work, 'init', '-q', '-b', 'main');
  await writeFile(join(work, 'sub', 'Dockerfile'), 'FROM debian\nCOPY tool.sh /\n');
  await writeFile(join(work, 'sub', 'tool.sh'), '#!/bin/sh\n');
  await chmod(join(work, 'sub', 'tool.sh'), 0o755);
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'one');
  git(work, 'tag', 'v1');
  const commit = git(work, 'rev-parse', 'HEAD');
  git(base, 'clone', '-q', '--bare', work, join(base, 'repos', 'app.git'));

  const port = await freePort();
  const daemon = spawn(
    'git',
    ['daemon', '--reuseaddr', '--export-all', `--base-path=${join(base, 'repos')}`, '--listen=127.0.0.1', `--port=${port}`],
    { stdio: 'ignore' },
  );
  t.after(() => {
    daemon.kill('SIGTERM');
  });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) =>
      connect(port, '127.0.0.1')
        .on('connect', function (this: Socket) {
          this.destroy();
          resolve(true);
        })
        .on('error', () => resolve(false)),
    );
    if (up) break;
    if (i > 50) return t.skip('git daemon did not start listening');
    await sleep(100);
  }
  const url = `git://127.0.0.1:${port}/app.git`;

  const byDefault = await startTestFetcher(t);
  await assert.rejects(
    byDefault.resolve({ source: { $case: 'git', value: { url: `${url}#v1:sub` } } }),
    (err) => {
      assert.equal(grpcCode(err), status.INVALID_ARGUMENT);
      assert.match((err as Error).message, /git:\/\/.*--allowed-schemes lists "git"/);
      return true;
    },
  );

  const fetcher = await startTestFetcher(t, ['--allowed-schemes=https,git']);
  const ctx = await fetcher.resolve({ source: { $case: 'git', value: { url: `${url}#v1:sub` } } });
  assert.equal(ctx.gitCommit, commit);
  assert.equal(ctx.dockerfile, 'FROM debian\nCOPY tool.sh /\n');
  const listed = await fetcher.listFiles(ctx.contextId, ['tool.sh']);
  assert.equal(listed.sources[0]!.files[0]!.mode, 0o755);
  for (const missing of [`${url}#no-such-tag`, `git://127.0.0.1:${port}/missing.git`]) {
    await assert.rejects(
      fetcher.resolve({ source: { $case: 'git', value: { url: missing } } }),
      (err) => {
        assert.equal(grpcCode(err), status.NOT_FOUND, `${missing}: ${(err as Error).message}`);
        return true;
      },
    );
  }

  // By name, git:// goes through a proxy command that connects to the checked address only.
  const relay = await startPinnedRelay(t, port);
  const pinned = await pinnedGitLoader(t, scriptedResolver(PINNED_ADDRESS), { policy: { allowedSchemes: ['git'] } });
  assert.equal((await pinned(`git://localhost:${relay.port}/app.git#v1:sub`)).gitCommit, commit);
  assert.equal(relay.connections(), 1);
});
