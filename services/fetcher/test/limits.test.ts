import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { FetchUrlResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { grpcCode, startHttpServer, startTestFetcher, tempDir, type TestFetcher } from './support.ts';

function fetchUrl(fetcher: TestFetcher, url: string): Promise<FetchUrlResponse> {
  return new Promise((resolve, reject) =>
    fetcher.client.fetchUrl({ url, expectedDigest: '' }, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

async function contextOf(root: string, files: number, bytesEach: number): Promise<void> {
  await mkdir(join(root, 'data'), { recursive: true });
  await writeFile(join(root, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  for (let i = 0; i < files; i++) await writeFile(join(root, 'data', `f${i}`), Buffer.alloc(bytesEach, i));
}

test('--max-files and --max-context-size refuse local and tarball contexts, naming the limit', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'ctx');
  await contextOf(root, 20, 1000);
  execFileSync('tar', ['-cf', join(dir, 'ctx.tar'), '-C', root, '.']);
  const archive = await readFile(join(dir, 'ctx.tar'));
  const serveTar = await startHttpServer(t, (_req, res) => res.end(archive));
  const cases: [string[], RegExp][] = [
    [['--max-files=10'], /more than 10 (files|members)/],
    [['--max-context-size=5000'], /(larger|more) than the context size limit of 5000 bytes/],
  ];
  for (const [flags, message] of cases) {
    const fetcher = await startTestFetcher(t, flags);
    for (const source of [
      { $case: 'local' as const, value: { path: root } },
      {
        $case: 'tarball' as const,
        value: { source: { $case: 'url' as const, value: `${serveTar.url}/ctx.tar` } },
      },
    ]) {
      await assert.rejects(fetcher.resolve({ source }), (err) => {
        assert.equal(grpcCode(err), status.RESOURCE_EXHAUSTED, `${flags.join()} ${source.$case}`);
        assert.match((err as Error).message, message);
        return true;
      });
    }
    assert.deepEqual(await readdir(join(fetcher.cacheDir, 'tmp')), []);
  }
  // Within the limits, the same context resolves.
  const roomy = await startTestFetcher(t, ['--max-files=100', '--max-context-size=1MiB']);
  const ctx = await roomy.resolve({ source: { $case: 'local', value: { path: root } } });
  assert.equal((await roomy.listFiles(ctx.contextId, ['data'])).sources[0]!.files.length, 21);
});

test('--fetch-timeout bounds a download that trickles in under the body timeout', async (t) => {
  const http = await startHttpServer(t, (req, res) => {
    if (req.url !== '/trickle') return res.end('quick\n');
    res.writeHead(200, { 'content-length': '1000' });
    const timer = setInterval(() => res.write('x'), 50);
    res.on('close', () => clearInterval(timer));
  });
  const fetcher = await startTestFetcher(t, ['--fetch-timeout=1s', '--body-timeout=10s']);
  await assert.rejects(fetchUrl(fetcher, `${http.url}/trickle`), (err) => {
    assert.equal(grpcCode(err), status.UNAVAILABLE);
    assert.match((err as Error).message, /fetching http:\/\/127\.0\.0\.1:\d+\/trickle took longer than the fetch time limit of 1 s/);
    return true;
  });
  // The shared download stops under the same limit; its temporary file goes as it unwinds.
  for (let i = 0; i < 50 && (await readdir(join(fetcher.cacheDir, 'tmp'))).length > 0; i++) await sleep(100);
  assert.deepEqual(await readdir(join(fetcher.cacheDir, 'tmp')), []);
  assert.equal((await fetchUrl(fetcher, `${http.url}/quick`)).file!.size, '6');
});

test('--allow-hosts admits only the hosts listed', async (t) => {
  const http = await startHttpServer(t, (_req, res) => res.end('ok\n'));
  const fetcher = await startTestFetcher(t, ['--allow-hosts=127.0.0.1']);
  assert.equal((await fetchUrl(fetcher, `${http.url}/a`)).file!.size, '3');
  const port = new URL(http.url).port;
  await assert.rejects(fetchUrl(fetcher, `http://localhost:${port}/a`), (err) => {
    assert.equal(grpcCode(err), status.PERMISSION_DENIED);
    assert.match((err as Error).message, /host localhost of .* is not on the fetcher's allow list/);
    return true;
  });
  assert.equal(http.hits.get('/a'), 1, 'the refused URL was never requested');
});

test('--help lists every setting with its environment variable and default, and exits 0', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../src/main.ts', import.meta.url)), '--help'], {
    encoding: 'utf8',
  });
  for (const expected of [
    /--max-file-size\n\s+largest single file .*KINDLING_FETCHER_MAX_FILE_SIZE; default 8GiB/,
    /--fetch-timeout\n.*default 900s/,
    /--allow-link-local\n.*KINDLING_FETCHER_ALLOW_LINK_LOCAL; default false/,
  ])
    assert.match(out, expected);
});
