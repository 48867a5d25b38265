/**
 * `kindling build -`: stdin told by content as docker tells it (a tar, gzip or zstd stream is a context,
 * anything else a Dockerfile; bzip2 and xz are refused), and an archive on stdin uploaded to a real
 * fetcher and built by a real planner, each its own process on 127.0.0.1. No VM: the planner's VM host
 * is an unused port, so the build stops right after its context is resolved.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '@kindling/runtime/testing';
import { stdinBuildSource } from '../src/commands/build.ts';
import { startServiceProcess, stopServiceProcess } from '../src/local-suite.ts';
import { readStdinContext } from '../src/stdin-context.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** A context directory and its archives in every form, in a temp dir removed after the test. */
function contextArchives(t: TestContext): { dir: string; archives: Record<'tar' | 'gzip' | 'zstd' | 'bzip2' | 'xz', string> } {
  const dir = mkdtempSync(join(tmpdir(), 'kindling-cli-stdin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'build'), { recursive: true });
  writeFileSync(join(src, 'build', 'app.Dockerfile'), 'FROM debian:bookworm\nCOPY hello.txt /\n');
  writeFileSync(join(src, 'hello.txt'), 'hello\n');
  const archives = {
    tar: join(dir, 'ctx.tar'),
    gzip: join(dir, 'ctx.tar.gz'),
    zstd: join(dir, 'ctx.tar.zst'),
    bzip2: join(dir, 'ctx.tar.bz2'),
    xz: join(dir, 'ctx.tar.xz'),
  };
  execFileSync('tar', ['-cf', archives.tar, '-C', src, '.']);
  execFileSync('tar', ['-czf', archives.gzip, '-C', src, '.']);
  execFileSync('tar', ['--zstd', '-cf', archives.zstd, '-C', src, '.']);
  execFileSync('tar', ['-cjf', archives.bzip2, '-C', src, '.']);
  execFileSync('tar', ['-cJf', archives.xz, '-C', src, '.']);
  return { dir, archives };
}

/** stdin as the CLI sees it: the file in small pieces, so detection must gather its first bytes. */
async function* pieces(data: Buffer, size = 100): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

test('a tar, gzip or zstd stream on stdin is a context archive, passed on byte for byte', async (t) => {
  const { archives } = contextArchives(t);
  for (const [format, fileName] of [
    ['tar', 'stdin.tar'],
    ['gzip', 'stdin.tar.gz'],
    ['zstd', 'stdin.tar.zst'],
  ] as const) {
    const data = readFileSync(archives[format]);
    const stdin = await readStdinContext(pieces(data));
    assert.equal(stdin.kind, 'archive', format);
    if (stdin.kind !== 'archive') continue;
    assert.equal(stdin.format, format);
    assert.equal(stdin.fileName, fileName);
    assert.ok((await collect(stdin.chunks)).equals(data), `${format}: the uploaded bytes are stdin's`);
  }
});

test('anything else on stdin is a Dockerfile without context, as today; -f is kept', async () => {
  for (const text of ['FROM debian:bookworm\nRUN echo hi\n', '', `# ${'x'.repeat(400)}\nFROM debian:bookworm\n`]) {
    const source = await stdinBuildSource(pieces(Buffer.from(text), 7), 'Dockerfile.dev', () => assert.fail('a Dockerfile is not uploaded'));
    assert.deepEqual(source, { source: { $case: 'dockerfile', value: text }, dockerfilePath: 'Dockerfile.dev' });
  }
  // A Dockerfile that merely mentions ustar is still a Dockerfile: the magic must sit at offset 257.
  const stdin = await readStdinContext(pieces(Buffer.from(`FROM debian:bookworm\nLABEL format=ustar\n`)));
  assert.equal(stdin.kind, 'dockerfile');
});

test('bzip2 and xz archives are refused, naming the formats that work', async (t) => {
  const { archives } = contextArchives(t);
  for (const format of ['bzip2', 'xz'] as const) {
    await assert.rejects(
      stdinBuildSource(pieces(readFileSync(archives[format])), '', () => assert.fail('refused before any upload')),
      (e: Error) => e.message.includes(`${format}-compressed`) && e.message.includes('.tar, .tar.gz or .tar.zst'),
    );
  }
});

test('kindling build - < ctx.tar.zst uploads the context to the fetcher and the planner builds from it', async (t) => {
  const { dir, archives } = contextArchives(t);
  const env = { KINDLING_LOG_LEVEL: 'warn' };
  const fetcher = await startServiceProcess('fetcher', [`--cache-dir=${join(dir, 'cache')}`], { env });
  t.after(() => stopServiceProcess(fetcher));
  const unreachable = `127.0.0.1:${await freePort()}`;
  const planner = await startServiceProcess(
    'planner',
    [`--state-dir=${join(dir, 'planner')}`, `--fetcher-address=${fetcher.address}`, `--vmm-address=${unreachable}`, `--provisioner-address=${unreachable}`],
    { env },
  );
  t.after(() => stopServiceProcess(planner));

  const kindling = async (args: string[], stdinFile: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const stdin = openSync(stdinFile, 'r');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'cli/src/main.ts', 'build', ...args], {
        cwd: repoRoot,
        stdio: [stdin, 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code, stdout, stderr };
    } finally {
      closeSync(stdin);
    }
  };

  const built = await kindling(['-t', 'app:1', '-f', 'build/app.Dockerfile', '--planner', planner.address, '--fetcher', fetcher.address, '-'], archives.zstd);
  assert.match(built.stdout, /=> uploaded the zstd context from stdin \(\d+ bytes\) as upload-[0-9a-f]{64}\n/);
  assert.match(built.stdout, /=> build /);
  // Planning got past the context (the fetcher resolved the upload) and stopped at the VM host.
  assert.doesNotMatch(built.stdout + built.stderr, /fetcher: /);
  assert.match(built.stdout + built.stderr, /vmm: /);
  assert.equal(built.code, 1);

  const refused = await kindling(['-t', 'app:1', '--planner', planner.address, '--fetcher', fetcher.address, '-'], archives.xz);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /kindling build: stdin holds a xz-compressed archive; a context on stdin must be a \.tar, \.tar\.gz or \.tar\.zst stream/);

  const noFetcher = await kindling(['-t', 'app:1', '--planner', planner.address, '--fetcher', unreachable, '-'], archives.gzip);
  assert.equal(noFetcher.code, 1);
  assert.match(noFetcher.stderr, new RegExp(`uploading the context on stdin failed: cannot reach the fetcher at ${unreachable} \\(.*\\): is it running there\\? Give its address with --fetcher or KINDLING_FETCHER_ADDR\\n$`));
});
