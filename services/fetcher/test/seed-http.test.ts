import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { grpcCode, startHttpServer, startTestFetcher } from './support.ts';
import { status } from '@grpc/grpc-js';

const DOCKERFILE = `FROM debian:bookworm
ADD ./docker-entrypoint.sh /usr/local/bin/
ADD https://example.invalid/x /x
ENTRYPOINT ["docker-entrypoint.sh"]
`;
const ENTRYPOINT = '#!/bin/sh\nexec "$@"\n';
const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';

/** Serves a context laid out like firebuild's seed example, plus failure cases. */
async function seedServer(t: Parameters<typeof startHttpServer>[0]) {
  return startHttpServer(t, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    switch (path) {
      case '/seed/Dockerfile':
        return res.end(DOCKERFILE);
      case '/seed/docker-entrypoint.sh':
        res.setHeader('last-modified', LAST_MODIFIED);
        return res.end(ENTRYPOINT);
      case '/other/absolute.txt':
        return res.writeHead(203).end('absolute source\n');
      case '/seed/conf':
        return res.writeHead(301, { location: '/seed/conf/' }).end();
      case '/seed/conf/':
        return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>listing</html>');
      case '/seed/broken':
        return res.writeHead(500).end('boom');
      case '/seed/odd%20name%231%25.txt':
        return res.end('odd\n');
      case '/seed/to-denied':
        return res.writeHead(302, { location: 'http://denied.example/Dockerfile' }).end();
      case '/seed/loop':
        return res.writeHead(302, { location: '/seed/loop2' }).end();
      case '/seed/loop2':
        return res.writeHead(302, { location: '/seed/loop' }).end();
      case '/ignoring/app.Dockerfile':
        return res.end('FROM scratch\nCOPY kept.txt /\n');
      case '/ignoring/app.Dockerfile.dockerignore':
        return res.end('# the Dockerfile-specific file wins\nsecret.txt\n');
      case '/ignoring/.dockerignore':
        return res.end('kept.txt\n');
      case '/ignoring/kept.txt':
      case '/ignoring/secret.txt':
        return res.end('bytes\n');
      case '/plain/Dockerfile':
        return res.end('FROM scratch\n');
      case '/plain/.dockerignore':
        return res.end('*.key\n');
      case '/seed/slow':
        return void setTimeout(() => res.end('late'), 5000).unref();
      default:
        return res.writeHead(404).end('not found');
    }
  });
}

test('HTTP Dockerfile URL: the context root is the URL minus the file name', async (t) => {
  const http = await seedServer(t);
  const fetcher = await startTestFetcher(t, ['--headers-timeout=500ms']);
  const ctx = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/seed/Dockerfile` } },
  });
  assert.equal(ctx.dockerfile, DOCKERFILE);
  assert.equal(ctx.displayRoot, `${http.url}/seed/`);
  assert.equal(ctx.dockerignore, '');

  await t.test('relative and absolute sources resolve as URLs', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, [
      './docker-entrypoint.sh',
      `${http.url}/other/absolute.txt`,
    ]);
    const [rel, abs] = listed.sources.map((s) => s.files[0]!);
    assert.equal(rel!.path, 'docker-entrypoint.sh');
    assert.equal(rel!.mode, 0o644);
    assert.equal(rel!.digest, `sha256:${createHash('sha256').update(ENTRYPOINT).digest('hex')}`);
    assert.equal(rel!.mtime?.toUTCString(), LAST_MODIFIED);
    assert.equal((await fetcher.readBlob(rel!.digest)).toString(), ENTRYPOINT);
    assert.equal(abs!.path, 'absolute.txt');
    assert.equal((await fetcher.readBlob(abs!.digest)).toString(), 'absolute source\n');
  });

  await t.test('sources are joined as URL paths: each segment percent-encoded, "." and ".." cleaned first', async () => {
    const listed = await fetcher.listFiles(ctx.contextId, ['odd name#1%.txt', './x/../odd name#1%.txt']);
    for (const source of listed.sources) {
      assert.equal(source.files[0]!.path, 'odd name#1%.txt');
      assert.equal((await fetcher.readBlob(source.files[0]!.digest)).toString(), 'odd\n');
    }
  });

  await t.test('a directory source is refused, saying so', async () => {
    for (const source of ['conf', 'conf/', '.']) {
      await assert.rejects(fetcher.listFiles(ctx.contextId, [source]), (err) => {
        assert.equal(grpcCode(err), status.INVALID_ARGUMENT, source);
        assert.match((err as Error).message, /directory cannot be fetched over HTTP/);
        return true;
      });
    }
  });

  await t.test('404 is NOT_FOUND with the URL, 500 is UNAVAILABLE, a timeout DEADLINE_EXCEEDED', async () => {
    await assert.rejects(fetcher.listFiles(ctx.contextId, ['missing.sh']), (err) => {
      assert.equal(grpcCode(err), status.NOT_FOUND);
      assert.match((err as Error).message, new RegExp(`${http.url}/seed/missing.sh`));
      return true;
    });
    await assert.rejects(
      fetcher.listFiles(ctx.contextId, ['broken']),
      (err) => grpcCode(err) === status.UNAVAILABLE,
    );
    await assert.rejects(fetcher.listFiles(ctx.contextId, ['slow']), (err) => {
      assert.equal(grpcCode(err), status.DEADLINE_EXCEEDED);
      assert.match((err as Error).message, /timed out: (no response headers within|the body paused for more than) [\d.]+ s/);
      return true;
    });
  });

  await t.test('a redirect loop stops at the redirect limit', async () => {
    await assert.rejects(fetcher.listFiles(ctx.contextId, ['loop']), (err) => {
      assert.equal(grpcCode(err), status.FAILED_PRECONDITION);
      assert.match((err as Error).message, /redirected more than 5 times/);
      return true;
    });
    assert.equal((http.hits.get('/seed/loop') ?? 0) + (http.hits.get('/seed/loop2') ?? 0), 6);
  });

  await t.test('sources cannot escape the context root', async () => {
    for (const source of ['../secret', '/etc/passwd', 'a/../../x']) {
      await assert.rejects(
        fetcher.listFiles(ctx.contextId, [source]),
        (err) => grpcCode(err) === status.INVALID_ARGUMENT,
      );
    }
  });

  await t.test('ten concurrent clients asking for one file cause one download', async () => {
    const listed = await Promise.all(
      Array.from({ length: 10 }, () => fetcher.listFiles(ctx.contextId, ['docker-entrypoint.sh'])),
    );
    assert.equal(new Set(listed.map((l) => l.sources[0]!.files[0]!.digest)).size, 1);
    // One GET from the first subtest, one for these ten.
    assert.equal(http.hits.get('/seed/docker-entrypoint.sh'), 2);
  });
});

test('a missing Dockerfile URL is NOT_FOUND; link-local and denied hosts are refused', async (t) => {
  const http = await seedServer(t);
  const fetcher = await startTestFetcher(t, ['--deny-hosts=denied.example']);
  await assert.rejects(
    fetcher.resolve({ source: { $case: 'http', value: { dockerfileUrl: `${http.url}/nope/Dockerfile` } } }),
    (err) => {
      assert.equal(grpcCode(err), status.NOT_FOUND);
      assert.match((err as Error).message, /\/nope\/Dockerfile/);
      return true;
    },
  );
  for (const url of [
    'http://169.254.169.254/latest/Dockerfile',
    'http://[fd00:ec2::254]/Dockerfile',
    'http://denied.example/Dockerfile',
  ]) {
    await assert.rejects(
      fetcher.resolve({ source: { $case: 'http', value: { dockerfileUrl: url } } }),
      (err) => {
        assert.equal(grpcCode(err), status.PERMISSION_DENIED, url);
        return true;
      },
    );
  }
  // Every redirect hop meets the policy; the error names both the URL asked for and the hop refused.
  await assert.rejects(
    fetcher.resolve({ source: { $case: 'http', value: { dockerfileUrl: `${http.url}/seed/to-denied` } } }),
    (err) => {
      assert.equal(grpcCode(err), status.PERMISSION_DENIED);
      assert.match((err as Error).message, /\/seed\/to-denied, redirected to http:\/\/denied\.example\/Dockerfile, is on the fetcher's deny list/);
      return true;
    },
  );
  // The policy answers first, whatever else is wrong with the URL (here: it names a directory).
  await assert.rejects(
    new Promise((resolve, reject) =>
      fetcher.client.fetchUrl(
        { url: 'http://169.254.169.254/latest/meta-data/', expectedDigest: '' },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    ),
    (err) => {
      assert.equal(grpcCode(err), status.PERMISSION_DENIED);
      assert.match((err as Error).message, /169\.254\.169\.254, a link-local\/metadata address/);
      return true;
    },
  );
  await assert.rejects(
    fetcher.resolve({ source: { $case: 'http', value: { dockerfileUrl: 'ftp://127.0.0.1/Dockerfile' } } }),
    (err) => grpcCode(err) === status.INVALID_ARGUMENT,
  );
});

test('credentials in a URL never reach the logs', async (t) => {
  let seenAuth = '';
  const http = await startHttpServer(t, (req, res) => {
    seenAuth = req.headers.authorization ?? '';
    if (req.url === '/ctx/Dockerfile') res.end('FROM scratch\n');
    else res.writeHead(404).end();
  });
  const fetcher = await startTestFetcher(t, ['--log-level=debug']);
  const url = http.url.replace('http://', 'http://builder:s3cr3t-token@');
  const ctx = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${url}/ctx/Dockerfile` } },
  });
  assert.equal(seenAuth, `Basic ${Buffer.from('builder:s3cr3t-token').toString('base64')}`);
  assert.doesNotMatch(ctx.displayRoot, /s3cr3t/);
  await assert.rejects(fetcher.listFiles(ctx.contextId, ['missing']), (err) => {
    assert.doesNotMatch((err as Error).message, /s3cr3t/);
    return true;
  });
  assert.ok(fetcher.logLines.length > 0);
  for (const line of fetcher.logLines) assert.doesNotMatch(line, /s3cr3t/);
});

test('HTTP contexts: <Dockerfile>.dockerignore, then .dockerignore, beside the Dockerfile', async (t) => {
  const http = await seedServer(t);
  const fetcher = await startTestFetcher(t);
  const specific = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/ignoring/app.Dockerfile` } },
  });
  assert.equal(specific.dockerignorePath, 'app.Dockerfile.dockerignore');
  assert.equal((await fetcher.listFiles(specific.contextId, ['kept.txt'])).sources[0]!.files[0]!.path, 'kept.txt');
  await assert.rejects(fetcher.listFiles(specific.contextId, ['secret.txt']), (err) => {
    assert.equal(grpcCode(err), status.NOT_FOUND);
    assert.match((err as Error).message, /excluded by the context's \.dockerignore/);
    return true;
  });
  assert.equal(http.hits.get('/ignoring/secret.txt'), undefined, 'an excluded source is never fetched');

  const plain = await fetcher.resolve({
    source: { $case: 'http', value: { dockerfileUrl: `${http.url}/plain/Dockerfile` } },
  });
  assert.equal(plain.dockerignorePath, '.dockerignore');
  assert.equal(plain.dockerignore, '*.key\n');
  await assert.rejects(
    fetcher.listFiles(plain.contextId, ['tls/server.key']),
    (err) => grpcCode(err) === status.NOT_FOUND,
  );
});
