import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { FileType, type UploadContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { grpcCode, startHttpServer, startTestFetcher, tempDir, type TestFetcher } from './support.ts';

function upload(fetcher: TestFetcher, fileName: string, data: Buffer): Promise<UploadContextResponse> {
  return new Promise((resolve, reject) => {
    const call = fetcher.client.uploadContext((err, res) => (err ? reject(err) : resolve(res!)));
    call.write({ part: { $case: 'header', value: { fileName, size: String(data.length) } } });
    for (let at = 0; at < data.length; at += 4096)
      call.write({ part: { $case: 'chunk', value: data.subarray(at, at + 4096) } });
    call.end();
  });
}

test('tarball contexts (.tar, .tar.gz, .tar.zst) by URL and by upload', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(join(src, 'conf'), { recursive: true });
  await writeFile(join(src, 'Dockerfile'), 'FROM debian\nCOPY . /\n');
  await writeFile(join(src, 'entry.sh'), '#!/bin/sh\n');
  await chmod(join(src, 'entry.sh'), 0o755);
  await writeFile(join(src, 'conf', 'app.conf'), 'port=80\n');
  await writeFile(join(src, 'ignored.tmp'), 'tmp');
  await writeFile(join(src, '.dockerignore'), '*.tmp\n');
  await symlink('conf/app.conf', join(src, 'app.conf'));
  await mkdir(join(src, 'build'));
  await writeFile(join(src, 'build', 'app.Dockerfile'), 'FROM debian\nCOPY entry.sh /\n');
  await writeFile(join(src, 'build', 'app.Dockerfile.dockerignore'), 'conf\n');
  execFileSync('tar', ['-cf', join(dir, 'ctx.tar'), '-C', src, '.']);
  execFileSync('tar', ['-czf', join(dir, 'ctx.tar.gz'), '-C', src, '.']);
  execFileSync('tar', ['--zstd', '-cf', join(dir, 'ctx.tar.zst'), '-C', src, '.']);
  const http = await startHttpServer(t, (req, res) => {
    readFile(join(dir, (req.url ?? '/').slice(1))).then(
      (body) => res.end(body),
      () => res.writeHead(404).end(),
    );
  });
  const fetcher = await startTestFetcher(t);

  const check = async (contextId: string) => {
    const listed = await fetcher.listFiles(contextId, ['.']);
    const files = new Map(listed.sources[0]!.files.map((f) => [f.path, f]));
    assert.equal(files.get('entry.sh')!.mode, 0o755);
    assert.equal(files.get('app.conf')!.type, FileType.FILE_TYPE_SYMLINK);
    assert.equal(files.get('app.conf')!.linkTarget, 'conf/app.conf');
    assert.equal(files.get('conf')!.type, FileType.FILE_TYPE_DIRECTORY);
    assert.ok(!files.has('ignored.tmp'));
    assert.equal((await fetcher.readBlob(files.get('conf/app.conf')!.digest)).toString(), 'port=80\n');
  };

  for (const name of ['ctx.tar', 'ctx.tar.gz', 'ctx.tar.zst']) {
    await t.test(`${name} by URL`, async () => {
      const ctx = await fetcher.resolve({
        source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/${name}` } } },
      });
      assert.equal(ctx.dockerfile, 'FROM debian\nCOPY . /\n');
      assert.equal(ctx.dockerignore, '*.tmp\n');
      await check(ctx.contextId);
    });
  }

  await t.test('<Dockerfile>.dockerignore beside the Dockerfile wins over .dockerignore', async () => {
    const ctx = await fetcher.resolve({
      source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/ctx.tar` } } },
      dockerfilePath: 'build/app.Dockerfile',
    });
    assert.equal(ctx.dockerfile, 'FROM debian\nCOPY entry.sh /\n');
    assert.equal(ctx.dockerignorePath, 'build/app.Dockerfile.dockerignore');
    assert.equal(ctx.dockerignore, 'conf\n');
    const listed = await fetcher.listFiles(ctx.contextId, ['ignored.tmp', 'entry.sh']);
    assert.equal(listed.sources.length, 2);
    await assert.rejects(
      fetcher.listFiles(ctx.contextId, ['conf/app.conf']),
      (err) => grpcCode(err) === status.NOT_FOUND,
    );
  });

  await t.test('uploaded as a client stream', async () => {
    const uploaded = await upload(fetcher, 'ctx.tar.zst', await readFile(join(dir, 'ctx.tar.zst')));
    assert.match(uploaded.uploadId, /^upload-[0-9a-f]{64}$/);
    const ctx = await fetcher.resolve({
      source: { $case: 'tarball', value: { source: { $case: 'uploadId', value: uploaded.uploadId } } },
    });
    await check(ctx.contextId);
    await assert.rejects(
      fetcher.resolve({
        source: {
          $case: 'tarball',
          value: { source: { $case: 'uploadId', value: `upload-${'0'.repeat(64)}` } },
        },
      }),
      (err) => grpcCode(err) === status.NOT_FOUND,
    );
  });

  await t.test('members escaping the context are refused, naming them', async () => {
    await writeFile(join(dir, 'x'), 'x\n');
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
    execFileSync('tar', [
      '-P',
      '-cf',
      join(dir, 'dotdot.tar'),
      '-C',
      dir,
      '--transform=s,^x,../../x,',
      'Dockerfile',
      'x',
    ]);
    execFileSync('tar', [
      '-P',
      '-cf',
      join(dir, 'abs.tar'),
      '-C',
      dir,
      '--transform=s,^x,/tmp/x,',
      'Dockerfile',
      'x',
    ]);
    for (const [name, member] of [
      ['dotdot.tar', '../../x'],
      ['abs.tar', '/tmp/x'],
    ] as const) {
      await assert.rejects(
        fetcher.resolve({
          source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/${name}` } } },
        }),
        (err) => {
          assert.equal(grpcCode(err), status.INVALID_ARGUMENT, name);
          assert.ok((err as Error).message.includes(member), (err as Error).message);
          return true;
        },
      );
    }
    // A symlink member pointing outside may exist, but no source may go through it.
    const linkDir = join(dir, 'linkctx');
    await mkdir(linkDir);
    await writeFile(join(linkDir, 'Dockerfile'), 'FROM scratch\n');
    await symlink('/etc', join(linkDir, 'etc-link'));
    execFileSync('tar', ['-cf', join(dir, 'link.tar'), '-C', linkDir, '.']);
    const ctx = await fetcher.resolve({
      source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/link.tar` } } },
    });
    await assert.rejects(fetcher.listFiles(ctx.contextId, ['etc-link/passwd']), (err) => {
      assert.equal(grpcCode(err), status.INVALID_ARGUMENT);
      assert.match((err as Error).message, /etc-link/);
      return true;
    });
  });

  await t.test('garbage is INVALID_ARGUMENT, a missing archive NOT_FOUND', async () => {
    await writeFile(
      join(dir, 'junk.tar.gz'),
      Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 7)]),
    );
    await assert.rejects(
      fetcher.resolve({
        source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/junk.tar.gz` } } },
      }),
      (err) => grpcCode(err) === status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      fetcher.resolve({
        source: { $case: 'tarball', value: { source: { $case: 'url', value: `${http.url}/none.tar` } } },
      }),
      (err) => grpcCode(err) === status.NOT_FOUND,
    );
  });
});

test('an upload cut short leaves nothing in the cache', async (t) => {
  const fetcher = await startTestFetcher(t);
  // Cancelled by the client, with the size announced and without, large and small.
  for (const [size, chunks, chunkSize] of [
    [8 * 1024 * 1024, 4, 1024 * 1024],
    [0, 4, 1024 * 1024],
    [0, 1, 100_000],
  ]) {
    const call = fetcher.client.uploadContext(() => {});
    const ended = new Promise((resolve) => call.on('status', resolve));
    call.write({ part: { $case: 'header', value: { fileName: 'ctx.tar', size: String(size) } } });
    for (let i = 0; i < chunks!; i++) call.write({ part: { $case: 'chunk', value: Buffer.alloc(chunkSize!, i) } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    call.cancel();
    await ended;
  }
  // Ended normally, but shorter than announced.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const call = fetcher.client.uploadContext((err, res) => (err ? reject(err) : resolve(res)));
      call.write({ part: { $case: 'header', value: { fileName: 'ctx.tar', size: '10000' } } });
      call.write({ part: { $case: 'chunk', value: Buffer.alloc(4000, 1) } });
      call.end();
    }),
    (err) => {
      assert.equal(grpcCode(err), status.INVALID_ARGUMENT);
      assert.match((err as Error).message, /ended after 4000 of the 10000 bytes announced/);
      return true;
    },
  );
  for (let i = 0; i < 30 && (await readdir(join(fetcher.cacheDir, 'tmp'))).length > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'tmp')), []);
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'sha256')), [], 'no truncated archive was stored');
});

test('an archive listing files without their directories still has those directories', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'src', 'lib'), { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY src /src\n');
  await writeFile(join(dir, 'src', 'lib', 'a.txt'), 'a\n');
  // Named file by file: the archive holds no member for src/ or src/lib/.
  execFileSync('tar', ['-cf', join(dir, 'files.tar'), '--no-recursion', '-C', dir, 'Dockerfile', 'src/lib/a.txt']);
  assert.doesNotMatch(execFileSync('tar', ['-tf', join(dir, 'files.tar')], { encoding: 'utf8' }), /^src\/$/mu);
  const fetcher = await startTestFetcher(t);
  const uploaded = await upload(fetcher, 'files.tar', await readFile(join(dir, 'files.tar')));
  const ctx = await fetcher.resolve({
    source: { $case: 'tarball', value: { source: { $case: 'uploadId', value: uploaded.uploadId } } },
  });
  const listed = await fetcher.listFiles(ctx.contextId, ['src']);
  assert.deepEqual(
    listed.sources[0]!.files.map((f) => [f.path, f.type]),
    [
      ['src', FileType.FILE_TYPE_DIRECTORY],
      ['src/lib', FileType.FILE_TYPE_DIRECTORY],
      ['src/lib/a.txt', FileType.FILE_TYPE_REGULAR],
    ],
  );
});
