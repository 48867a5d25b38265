/**
 * Files the step executor writes in the guest from bytes it holds (heredocs, secret mounts). The guest
 * here runs each command on this host with /bin/sh and exactly the env it was given, as the
 * provisioner runs it in a VM, so the shell script that writes the file is exercised for real.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { ExecRequest } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { executeStep, type StepEnvironment } from '../src/execution/step-executor.ts';
import type { BuildContextSource, BuildGuest, BuildVmHost } from '../src/ports/build-services.ts';
import { onlyStep, planOk } from './plan-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kindling-guest-write-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const execs: ExecRequest[] = [];
const localGuest: BuildGuest = {
  waitReady: async () => {},
  exec: async (request) => {
    execs.push(request);
    const argv = request.command?.$case === 'argv' ? request.command.value.argv : [];
    const env = Object.fromEntries(request.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const run = spawnSync(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
    return { exitCode: run.status ?? 255, signal: run.signal ?? '', timedOut: false };
  },
  putFiles: async () => assert.fail('no context files here'),
  closeSession: async () => {},
};

function environment(secrets: [string, string][] = []): StepEnvironment {
  return {
    buildId: 'b-test',
    target: { host: '127.0.0.1', port: 22, user: 'root', privateKey: '', agentSocket: '', hostKey: '', insecureIgnoreHostKey: false, sessionId: '' },
    contextId: '',
    secrets: new Map(secrets.map(([id, value]) => [id, Buffer.from(value)])),
    guest: localGuest,
    context: {} as BuildContextSource,
    vmHost: {} as BuildVmHost,
    stageImages: new Map(),
    imageNamed: () => assert.fail('no images here'),
    signal: new AbortController().signal,
    onOutput: () => {},
    warn: () => {},
  };
}

it('a heredoc past the 128 KiB a single env value may hold arrives byte-exact, multibyte characters included', async () => {
  const line = 'kindling é ✓ 𝄞 $HOME `x` \\n "q" \'s\'\n';
  const body = line.repeat(Math.ceil((300 * 1024) / Buffer.byteLength(line)));
  const target = join(dir, 'etc/app/big.conf');
  await executeStep(environment(), onlyStep(planOk(`FROM debian:12\nCOPY <<'EOF' ${target}\n${body}EOF\n`), 'COPY'));
  assert.equal(readFileSync(target, 'utf8'), body);
  assert.equal(statSync(target).mode & 0o777, 0o644);
  const chunks = execs.at(-1)!.env.filter((e) => e.startsWith('KINDLING_FILE_CONTENT_'));
  assert.ok(chunks.length > 3, `${chunks.length} chunks`);
  for (const chunk of chunks) assert.ok(Buffer.byteLength(chunk) < 128 * 1024);
});

it('a secret mount file is there with its mode while the RUN runs, and gone after', async () => {
  const target = join(dir, 'secrets/token');
  const seen = join(dir, 'seen');
  const step = onlyStep(planOk(`FROM debian:12\nRUN --mount=type=secret,id=tok,target=${target} stat -c '%a %s' ${target} > ${seen}\n`), 'RUN');
  await executeStep(environment([['tok', 's3cret-value']]), step);
  assert.equal(readFileSync(seen, 'utf8'), `400 ${'s3cret-value'.length}\n`);
  assert.throws(() => statSync(target), /ENOENT/);
  assert.throws(() => statSync(`${target}.kindling-tmp`), /ENOENT/);
});

it('an empty heredoc makes an empty file', async () => {
  const target = join(dir, 'empty');
  await executeStep(environment(), onlyStep(planOk(`FROM debian:12\nCOPY <<EOF ${target}\nEOF\n`), 'COPY'));
  assert.equal(readFileSync(target, 'utf8'), '');
});
