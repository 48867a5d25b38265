import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FileType } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { grpcCode, startTestFetcher, tempDir } from './support.ts';

async function write(root: string, path: string, content: string, mode = 0o644) {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), content);
  await chmod(join(root, path), mode);
}

async function makeContext(root: string) {
  await write(root, 'Dockerfile', 'FROM debian\nCOPY . /app\n');
  await write(
    root,
    '.dockerignore',
    '# build output\nnode_modules\n*.log\n!keep.log\ndocs\n!docs/README.md\n',
  );
  await write(root, 'bin/run.sh', '#!/bin/sh\necho run\n', 0o755);
  await write(root, 'src/a.go', 'package a\n');
  await write(root, 'src/sub/b.go', 'package b\n');
  await write(root, 'node_modules/x/index.js', 'x');
  await write(root, 'debug.log', 'noise');
  await write(root, 'keep.log', 'kept');
  await write(root, 'docs/guide.md', 'guide');
  await write(root, 'docs/README.md', 'readme');
  await symlink('bin/run.sh', join(root, 'run-link'));
  await symlink('src', join(root, 'src-link'));
  await symlink('../../etc', join(root, 'escape-link'));
  await symlink('/etc/passwd', join(root, 'absolute-link'));
}

test('local directory context over gRPC', async (t) => {
  const root = await tempDir(t);
  await makeContext(root);
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({ source: { $case: 'local', value: { path: root } } });
  assert.equal(ctx.dockerfile, 'FROM debian\nCOPY . /app\n');
  assert.equal(ctx.dockerignorePath, '.dockerignore');

  await t.test('.dockerignore applies, with "!" exceptions; modes and symlinks are kept', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['.']);
    const files = new Map(listed.sources[0]!.files.map((f) => [f.path, f]));
    for (const gone of ['node_modules', 'node_modules/x/index.js', 'debug.log', 'docs/guide.md'])
      assert.ok(!files.has(gone), gone);
    for (const kept of ['keep.log', 'docs/README.md', 'src/sub/b.go', 'Dockerfile', '.dockerignore'])
      assert.ok(files.has(kept), kept);
    const run = files.get('bin/run.sh')!;
    assert.equal(run.mode, 0o755);
    assert.equal(run.type, FileType.FILE_TYPE_REGULAR);
    assert.equal(run.digest, `sha256:${createHash('sha256').update('#!/bin/sh\necho run\n').digest('hex')}`);
    assert.equal((await fetcher.readBlob(run.digest)).toString(), '#!/bin/sh\necho run\n');
    assert.equal(files.get('src/a.go')!.mode, 0o644);
    const link = files.get('run-link')!;
    assert.equal(link.type, FileType.FILE_TYPE_SYMLINK);
    assert.equal(link.linkTarget, 'bin/run.sh');
    assert.equal(files.get('src')!.type, FileType.FILE_TYPE_DIRECTORY);
    assert.equal(
      Number(listed.totalSize),
      [...files.values()].reduce((n, f) => n + Number(f.size), 0),
    );
  });

  await t.test('directory sources bring their tree; globs and --exclude select', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['src', 'src/**/*.go', 'bin/*.sh'], ['sub']);
    const [dir, glob, sh] = listed.sources;
    assert.deepEqual(
      dir!.files.map((f) => f.path),
      ['src', 'src/a.go'],
    );
    assert.ok(dir!.files.every((f) => f.matchRoot === 'src'));
    // As in Docker's plain COPY, "**" is "*": "src/**/*.go" is exactly one directory below src.
    assert.deepEqual(
      glob!.files.map((f) => f.path),
      ['src/sub/b.go'],
    );
    assert.deepEqual(
      sh!.files.map((f) => [f.path, f.matchRoot]),
      [['bin/run.sh', 'bin/run.sh']],
    );
  });

  await t.test('COPY --parents: "**" spans directories and each file keeps its path below the pivot', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['**/*.go', 'src/./sub/*.go'], ['**/a.go'], true);
    const [all, pivoted] = listed.sources;
    assert.deepEqual(
      all!.files.map((f) => [f.path, f.type, f.matchRoot]),
      [
        ['src', FileType.FILE_TYPE_DIRECTORY, '.'],
        ['src/sub', FileType.FILE_TYPE_DIRECTORY, '.'],
        ['src/sub/b.go', FileType.FILE_TYPE_REGULAR, '.'],
      ],
    );
    assert.deepEqual(
      pivoted!.files.map((f) => [f.path, f.matchRoot]),
      [
        ['src', 'src'],
        ['src/sub', 'src'],
        ['src/sub/b.go', 'src'],
      ],
    );
    assert.ok(pivoted!.files[2]!.digest.startsWith('sha256:'));
    // Without parents the same source is a plain glob: "**" does not reach src/sub/b.go, and a
    // wildcard matching nothing lists nothing (BuildKit's AllowEmptyWildcard).
    const plain = await fetcher.listFiles(ctx.contextId, ['**/b.go']);
    assert.deepEqual(plain.sources[0]!.files, []);
  });

  await t.test('symlinks inside the context are followed for sources', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['src-link/a.go', 'run-link']);
    assert.equal(listed.sources[0]!.files[0]!.path, 'src-link/a.go');
    assert.equal(listed.sources[1]!.files[0]!.mode, 0o755);
  });

  await t.test('a symlink a wildcard matches is followed, as BuildKit copies it', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['run-l*', 'src-l?nk']);
    const [file, dir] = listed.sources;
    assert.deepEqual(
      file!.files.map((f) => [f.path, f.type, f.mode]),
      [['run-link', FileType.FILE_TYPE_REGULAR, 0o755]],
    );
    assert.equal((await fetcher.readBlob(file!.files[0]!.digest)).toString(), '#!/bin/sh\necho run\n');
    assert.deepEqual(
      dir!.files.map((f) => f.path),
      ['src-link', 'src-link/a.go', 'src-link/sub', 'src-link/sub/b.go'],
    );
    await assert.rejects(fetcher.listFiles(ctx.contextId, ['escape-*']), (err) => {
      assert.equal(grpcCode(err), status.INVALID_ARGUMENT);
      assert.match((err as Error).message, /escape-link/);
      return true;
    });
  });

  await t.test('escapes through "..", absolute paths and symlinks are refused, naming the path', async () => {
    for (const source of [
      '../outside',
      '/etc/passwd',
      'src/../../x',
      'escape-link/passwd',
      'absolute-link',
    ]) {
      await assert.rejects(fetcher.listFiles(ctx.contextId, [source]), (err) => {
        assert.equal(grpcCode(err), status.INVALID_ARGUMENT, source);
        assert.ok((err as Error).message.includes(source), (err as Error).message);
        return true;
      });
    }
  });

  await t.test('a directory excluded but for a "!" exception is still a source', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['docs']);
    assert.deepEqual(
      listed.sources[0]!.files.map((f) => [f.path, f.type]),
      [
        ['docs', FileType.FILE_TYPE_DIRECTORY],
        ['docs/README.md', FileType.FILE_TYPE_REGULAR],
      ],
    );
  });

  await t.test('missing and ignored sources are NOT_FOUND; a wildcard matching nothing lists nothing', async () => {
    for (const source of ['nope.txt', 'debug.log', 'node_modules/x/index.js', 'nope/*.txt']) {
      await assert.rejects(
        fetcher.listFiles(ctx.contextId, [source]),
        (err) => grpcCode(err) === status.NOT_FOUND,
      );
    }
    const empty = await fetcher.listFiles(ctx.contextId, ['*.nothing', 'keep.log']);
    assert.deepEqual(empty.sources[0]!.files, []);
    assert.equal(empty.sources[1]!.files.length, 1);
  });
});

test('a Dockerfile outside the context, and its own <Dockerfile>.dockerignore', async (t) => {
  const root = await tempDir(t);
  const elsewhere = await tempDir(t);
  await write(root, 'app.txt', 'app');
  await write(root, 'secret.txt', 'secret');
  await write(root, '.dockerignore', 'app.txt\n');
  await write(elsewhere, 'build.Dockerfile', 'FROM scratch\nCOPY app.txt /\n');
  await write(elsewhere, 'build.Dockerfile.dockerignore', 'secret.txt\n');
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({
    source: { $case: 'local', value: { path: root } },
    dockerfilePath: join(elsewhere, 'build.Dockerfile'),
  });
  assert.equal(ctx.dockerfile, 'FROM scratch\nCOPY app.txt /\n');
  assert.equal(ctx.dockerignore, 'secret.txt\n');
  const listed = await fetcher.listFiles(ctx.contextId, ['app.txt']);
  assert.equal(listed.sources[0]!.files[0]!.path, 'app.txt');
  await assert.rejects(
    fetcher.listFiles(ctx.contextId, ['secret.txt']),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
  // A relative Dockerfile path may not leave the context.
  await assert.rejects(
    fetcher.resolve({ source: { $case: 'local', value: { path: root } }, dockerfilePath: '../Dockerfile' }),
    (err) => grpcCode(err) === status.INVALID_ARGUMENT,
  );
  await assert.rejects(
    fetcher.resolve({ source: { $case: 'local', value: { path: join(root, 'missing') } } }),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
});

test('--local-roots confines local contexts and their Dockerfiles', async (t) => {
  const allowed = await tempDir(t);
  const outside = await tempDir(t);
  await write(allowed, 'Dockerfile', 'FROM scratch\n');
  await write(outside, 'Dockerfile', 'FROM scratch\n');
  await symlink(join(outside, 'Dockerfile'), join(allowed, 'linked.Dockerfile'));
  const fetcher = await startTestFetcher(t, [`--local-roots=${allowed}`]);
  const ok = await fetcher.resolve({ source: { $case: 'local', value: { path: allowed } } });
  assert.equal(ok.dockerfile, 'FROM scratch\n');
  for (const req of [
    { source: { $case: 'local' as const, value: { path: outside } } },
    {
      source: { $case: 'local' as const, value: { path: allowed } },
      dockerfilePath: join(outside, 'Dockerfile'),
    },
    { source: { $case: 'local' as const, value: { path: allowed } }, dockerfilePath: 'linked.Dockerfile' },
  ]) {
    await assert.rejects(fetcher.resolve(req), (err) => grpcCode(err) === status.PERMISSION_DENIED);
  }
});

test('a context file over a size limit is RESOURCE_EXHAUSTED, naming it, and leaves nothing behind', async (t) => {
  const root = await tempDir(t);
  await write(root, 'Dockerfile', 'FROM scratch\nCOPY . /\n');
  await write(root, 'small.txt', 'small');
  await writeFile(join(root, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 1));
  // Over --max-file-size: refused from the listing, before any byte is read.
  const limited = await startTestFetcher(t, ['--max-file-size=2MiB']);
  const ctx = await limited.resolve({ source: { $case: 'local', value: { path: root } } });
  for (const sources of [['big.bin'], ['.']]) {
    await assert.rejects(limited.listFiles(ctx.contextId, sources), (err) => {
      assert.equal(grpcCode(err), status.RESOURCE_EXHAUSTED, sources.join());
      assert.match((err as Error).message, /"big\.bin" is 3145728 bytes, over the file size limit of 2097152/);
      return true;
    });
  }
  assert.equal((await limited.listFiles(ctx.contextId, ['small.txt'])).sources[0]!.files.length, 1);
  assert.deepEqual(await readdir(join(limited.cacheDir, 'tmp')), []);
  // Larger than the whole cache: the store refuses it part-way through reading the file.
  const tiny = await startTestFetcher(t, ['--cache-size=2MiB']);
  const again = await tiny.resolve({ source: { $case: 'local', value: { path: root } } });
  await assert.rejects(tiny.listFiles(again.contextId, ['big.bin']), (err) => {
    assert.equal(grpcCode(err), status.RESOURCE_EXHAUSTED);
    assert.match((err as Error).message, /big\.bin.*larger than the whole blob cache/);
    return true;
  });
  assert.deepEqual(await readdir(join(tiny.cacheDir, 'tmp')), []);
  assert.deepEqual(await readdir(join(tiny.cacheDir, 'sha256')), []);
});

test('a "!" exception with wildcards reaches into excluded directories, as BuildKit does', async (t) => {
  const root = await tempDir(t);
  await write(root, 'Dockerfile', 'FROM scratch\nCOPY . /\n');
  await write(root, '.dockerignore', 'vendor\n!**/*.go\n');
  await write(root, 'vendor/lib/a.go', 'package lib\n');
  await write(root, 'vendor/lib/notes.txt', 'notes');
  await write(root, 'main.go', 'package main\n');
  await chmod(join(root, 'vendor'), 0o750);
  const fetcher = await startTestFetcher(t);
  const ctx = await fetcher.resolve({ source: { $case: 'local', value: { path: root } } });
  const all = await fetcher.listFiles(ctx.contextId, ['.']);
  assert.deepEqual(
    all.sources[0]!.files.map((f) => f.path),
    ['.dockerignore', 'Dockerfile', 'main.go', 'vendor', 'vendor/lib', 'vendor/lib/a.go'],
  );
  assert.equal(all.sources[0]!.files.find((f) => f.path === 'vendor')!.mode, 0o750);
  await assert.rejects(
    fetcher.listFiles(ctx.contextId, ['vendor/lib/notes.txt']),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
});
