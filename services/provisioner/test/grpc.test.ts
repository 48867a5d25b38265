import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { ExecRequest, ExecResponse, ExitStatus } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { LogStream } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { freePort } from '@kindling/runtime/testing';
import { startProvisionerSuite, type ProvisionerSuite } from './support/provisioner-suite.ts';
import { sshdUnavailableReason, startTestSshd } from './support/test-sshd.ts';
import { testAccounts } from './support/test-users.ts';

const run = promisify(execFile);
const skip = await sshdUnavailableReason();

interface ExecResult {
  stdout: string;
  stderr: string;
  exit: ExitStatus | undefined;
  messages: ExecResponse[];
}

function exec(suite: ProvisionerSuite, request: Partial<ExecRequest>, options: { deadline?: Date; onCall?: (cancel: () => void) => void } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const call = suite.provisioner.exec(
      { target: suite.target, env: [], user: '', workingDir: '', buildId: 'b-test', stepIndex: 1, reuseShell: false, ...request },
      options.deadline ? { deadline: options.deadline } : {},
    );
    options.onCall?.(() => call.cancel());
    const messages: ExecResponse[] = [];
    call.on('data', (message: ExecResponse) => messages.push(message));
    call.on('error', reject);
    call.on('end', () => {
      const text = (stream: LogStream): string =>
        Buffer.concat(messages.flatMap((m) => (m.event?.$case === 'output' && m.event.value.stream === stream ? [m.event.value.data] : []))).toString();
      const last = messages.at(-1)?.event;
      resolve({ stdout: text(LogStream.LOG_STREAM_STDOUT), stderr: text(LogStream.LOG_STREAM_STDERR), exit: last?.$case === 'exit' ? last.value : undefined, messages });
    });
  });
}

const sh = (script: string): Partial<ExecRequest> => ({ command: { $case: 'shell', value: { script, shell: [] } } });

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Whether `count` processes matching pattern run at once within 30 s. */
async function seenRunning(pattern: string, count: number): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { stdout } = await run('pgrep', ['-f', pattern]).catch(() => ({ stdout: '' }));
    if (stdout.trim().split('\n').filter(Boolean).length === count) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

async function gone(pattern: string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { stdout } = await run('pgrep', ['-f', pattern]).catch(() => ({ stdout: '' }));
    if (stdout.trim() === '') return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

test('ProvisionerService over gRPC against a real sshd and a real fetcher', { skip }, async (t) => {
  const suite = await startProvisionerSuite();
  const accounts = testAccounts();
  const guest = await mkdtemp(join(tmpdir(), 'kindling-test-guest-'));
  t.after(async () => {
    await suite.stop();
    await accounts.remove();
    await rm(guest, { recursive: true, force: true });
  });

  await t.test('WaitReady returns once SSH accepts the pinned key', async () => {
    const response = await suite.waitReady({ target: suite.target, timeout: { seconds: '10', nanos: 0 } });
    assert.equal(response.attempts, 1);
    assert.match(response.serverVersion, /^SSH-2\.0-OpenSSH/);
    assert.deepEqual(response.failedAttempts, []);
  });

  await t.test('WaitReady reports each failed attempt while the guest boots, for the caller to publish', async (t) => {
    const port = await freePort();
    const late = await startTestSshd({ port, startDelayMs: 1500 });
    t.after(() => late.stop());
    const response = await suite.waitReady({
      target: { ...suite.target, sessionId: 'late-boot', port, privateKey: late.clientPrivateKey, hostKey: late.hostPublicKey },
      timeout: { seconds: '30', nanos: 0 },
    });
    assert.ok(response.failedAttempts.length >= 1);
    assert.equal(response.attempts, response.failedAttempts.length + 1);
    for (const attempt of response.failedAttempts) {
      assert.match(attempt.error, /ECONNREFUSED/);
      assert.ok(attempt.time instanceof Date);
    }
    await suite.closeSession({ sessionId: 'late-boot' });
  });

  await t.test('Exec streams stdout and stderr chunks with timestamps, then the exit status last', async () => {
    const result = await exec(suite, { ...sh('echo out; echo err >&2; exit 3'), env: ['A=1'] });
    assert.equal(result.stdout, 'out\n');
    assert.equal(result.stderr, 'err\n');
    assert.equal(result.exit?.exitCode, 3);
    assert.equal(result.exit?.timedOut, false);
    for (const message of result.messages.slice(0, -1)) {
      assert.equal(message.event?.$case, 'output');
      if (message.event?.$case === 'output') assert.ok(message.event.value.time instanceof Date);
    }
  });

  await t.test('a client that stops reading holds the remote writer back (flow control)', async () => {
    const marker = join(guest, `flow-${randomBytes(4).toString('hex')}`);
    const call = suite.provisioner.exec({ target: suite.target, ...sh(`head -c 50000000 /dev/zero; touch '${marker}'`), env: [], user: '', workingDir: '', buildId: 'b', stepIndex: 0 } as ExecRequest);
    let received = 0;
    let exit: ExitStatus | undefined;
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (message: ExecResponse) => {
        if (message.event?.$case === 'output') received += message.event.value.data.length;
        else if (message.event?.$case === 'exit') exit = message.event.value;
      });
      call.on('error', reject);
      call.on('end', resolve);
    });
    await new Promise((resolve) => call.once('data', resolve));
    call.pause();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(existsSync(marker), false, 'the remote command is still blocked writing while nobody reads');
    call.resume();
    await ended;
    assert.equal(received, 50_000_000);
    assert.equal(exit?.exitCode, 0);
    assert.equal(existsSync(marker), true);
  });

  await t.test('Exec reports a signal, and a timeout', async () => {
    const killed = await exec(suite, sh('kill -KILL $$'));
    assert.deepEqual([killed.exit?.exitCode, killed.exit?.signal], [undefined, 'KILL']);
    const timedOut = await exec(suite, { ...sh('sleep 30'), timeout: { seconds: '0', nanos: 300e6 } });
    assert.equal(timedOut.exit?.timedOut, true);
  });

  await t.test('Exec in exec form as a USER with a hostile argv', async () => {
    const user = await accounts.user();
    const result = await exec(suite, { command: { $case: 'argv', value: { argv: ['sh', '-c', 'printf "%s:%s" "$(id -u)" "$1"', 'sh', "'; $(x) \"\n✓"] } }, user: user.name });
    assert.equal(result.stdout, `${user.uid}:'; $(x) "\n✓`);
  });

  await t.test('gRPC errors carry the right codes', async () => {
    await assert.rejects(exec(suite, { ...sh('true'), user: 'nobody-kindling-x' }), (error: ServiceError) => error.code === status.NOT_FOUND);
    await assert.rejects(exec(suite, { ...sh('true'), env: ['=x'] }), (error: ServiceError) => error.code === status.INVALID_ARGUMENT);
    await assert.rejects(exec(suite, { ...sh('true'), timeout: { seconds: '-1', nanos: 0 } }), (error: ServiceError) => error.code === status.INVALID_ARGUMENT && /timeout -1s 0ns is negative/.test(error.details));
    await assert.rejects(suite.waitReady({ target: suite.target, timeout: { seconds: '-5', nanos: 0 } }), (error: ServiceError) => error.code === status.INVALID_ARGUMENT);
    const impostor = (await run('sh', ['-c', `cat ${suite.sshd.dir}/client_ed25519_key.pub`])).stdout.trim();
    await assert.rejects(
      exec(suite, { ...sh('true'), target: { ...suite.target, sessionId: 'impostor', hostKey: impostor } }),
      (error: ServiceError) => error.code === status.FAILED_PRECONDITION && /SHA256:.*SHA256:/.test(error.details),
    );
    await assert.rejects(
      suite.waitReady({ target: { ...suite.target, sessionId: 'closed', port: 1 }, timeout: { seconds: '1', nanos: 0 } }),
      (error: ServiceError) => error.code === status.DEADLINE_EXCEEDED,
    );
  });

  await t.test('cancelling the Exec call kills the remote process group', async () => {
    const tag = `${900 + Math.floor(Math.random() * 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
    let cancel = (): void => {};
    const running = exec(suite, sh(`sleep ${tag} & sleep ${tag}; wait`), { onCall: (c) => (cancel = c) });
    running.catch(() => {}); // asserted below
    assert.ok(await seenRunning(`^sleep ${tag}`, 2), 'both sleeps ran before the cancel (else the check below proves nothing)');
    cancel();
    await assert.rejects(running, (error: ServiceError) => error.code === status.CANCELLED);
    assert.ok(await gone(`sleep ${tag}`), 'remote processes are gone after cancel');
  });

  await t.test('a call deadline kills the remote process group too', async () => {
    const tag = `${900 + Math.floor(Math.random() * 99)}.${randomBytes(3).readUIntBE(0, 3)}`;
    const call = exec(suite, sh(`sleep ${tag}`), { deadline: new Date(Date.now() + 3000) });
    call.catch(() => {}); // asserted below
    assert.ok(await seenRunning(`^sleep ${tag}`, 1), 'the sleep ran before the deadline (else the check below proves nothing)');
    await assert.rejects(call, (error: ServiceError) => error.code === status.DEADLINE_EXCEEDED);
    assert.ok(await gone(`sleep ${tag}`), 'remote process is gone after the deadline');
  });

  await t.test('Exec with reuse_shell runs each command in one long-lived shell, one at a time', async () => {
    const shell = (script: string, extra: Partial<ExecRequest> = {}) => exec(suite, { ...sh(script), reuseShell: true, ...extra });
    const first = await shell('echo $PPID');
    const second = await shell('echo $PPID');
    assert.equal(first.exit?.exitCode, 0);
    assert.match(first.stdout, /^\d+\n$/);
    assert.equal(second.stdout, first.stdout, 'both commands are children of the same shell');
    const fresh = await exec(suite, sh('echo $PPID'));
    assert.notEqual(fresh.stdout, first.stdout, 'a plain Exec gets a shell of its own');

    const merged = await shell('echo out; echo err >&2; exit 3');
    assert.equal(merged.stdout, 'out\nerr\n', 'stderr comes with stdout');
    assert.equal(merged.stderr, '');
    assert.equal(merged.exit?.exitCode, 3);
    assert.equal((await shell('printf no-newline')).stdout, 'no-newline');
    assert.equal((await shell('cat; echo read-nothing')).stdout, 'read-nothing\n', 'stdin is /dev/null, not the shell\'s');

    const together = await Promise.all(['one', 'two', 'three'].map((word) => shell(`sleep 0.2; echo ${word}`)));
    assert.deepEqual(together.map((r) => r.stdout), ['one\n', 'two\n', 'three\n'], 'queued, each with its own output');

    await assert.rejects(shell('true', { env: ['A=1'], user: 'nobody' }), (error: ServiceError) => {
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /reuse_shell .*env, user/);
      return true;
    });

    // the shell dies under a command: that call fails, and the next opens a new shell
    await assert.rejects(shell('kill -KILL $PPID'), (error: ServiceError) => error.code === status.UNAVAILABLE);
    const reopened = await shell('echo $PPID');
    assert.equal(reopened.exit?.exitCode, 0);
    assert.notEqual(reopened.stdout, first.stdout);
  });

  await t.test('PutFiles: a 200 MiB file and 1,000 small files pulled from the fetcher, with --chown', async () => {
    const user = await accounts.user();
    const group = await accounts.group();
    await mkdir(join(suite.contextDir, 'tree'), { recursive: true });
    await writeFile(join(suite.contextDir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    const big = join(suite.contextDir, 'big.bin');
    await run('sh', ['-c', `head -c ${200 * 1024 * 1024} /dev/urandom > '${big}'`]);
    for (let i = 0; i < 1000; i++) {
      const dir = join(suite.contextDir, 'tree', `d${i % 20}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `f${i}.txt`), `file ${i} ${randomBytes(8).toString('hex')}\n`.repeat(1 + (i % 7)), { mode: i % 3 === 0 ? 0o755 : 0o640 });
    }
    const context = await suite.resolveContext();
    const listing = await suite.listFiles(context.contextId, ['big.bin', 'tree']);
    const sources = listing.sources.map((source) => ({ pattern: source.pattern, files: source.files }));
    const response = await suite.putFiles({
      target: suite.target,
      contextId: context.contextId,
      sources,
      destination: 'dest/',
      workingDir: guest,
      chown: `${user.name}:${group.name}`,
      extractArchives: false,
      preserveOwnership: false,
      buildId: 'b-test',
      stepIndex: 2,
    });
    assert.equal(response.filesWritten, 1001);
    const bigEntry = sources[0]?.files[0];
    assert.equal(await sha256File(join(guest, 'dest/big.bin')), bigEntry?.digest);
    const bigStat = await stat(join(guest, 'dest/big.bin'));
    assert.deepEqual([bigStat.size, bigStat.uid, bigStat.gid], [200 * 1024 * 1024, user.uid, group.gid]);
    let checked = 0;
    for (const entry of sources[1]?.files ?? []) {
      if (!entry.digest) continue;
      const path = join(guest, 'dest', entry.path.slice('tree/'.length));
      const local = await stat(join(suite.contextDir, entry.path));
      const copied = await stat(path);
      assert.equal(createHash('sha256').update(await readFile(path)).digest('hex'), entry.digest.slice('sha256:'.length), path);
      assert.deepEqual([copied.mode & 0o7777, copied.uid, copied.gid], [local.mode & 0o7777, user.uid, group.gid], path);
      checked++;
    }
    assert.equal(checked, 1000);
  });

  await t.test('PutFiles with ADD semantics extracts a tar.gz from the context', async () => {
    const staging = join(suite.contextDir, 'stage');
    await mkdir(join(staging, 'opt/app'), { recursive: true });
    await writeFile(join(staging, 'opt/app/run'), '#!/bin/sh\n', { mode: 0o750 });
    await run('tar', ['-czf', join(suite.contextDir, 'app.tar.gz'), '-C', staging, 'opt']);
    const context = await suite.resolveContext();
    const listing = await suite.listFiles(context.contextId, ['app.tar.gz']);
    const response = await suite.putFiles({
      target: suite.target,
      contextId: context.contextId,
      sources: listing.sources.map((source) => ({ pattern: source.pattern, files: source.files })),
      destination: join(guest, 'extracted'),
      workingDir: '',
      chown: '',
      extractArchives: true,
      preserveOwnership: false,
      buildId: 'b-test',
      stepIndex: 3,
    });
    assert.equal(response.archivesExtracted, 1);
    assert.equal((await stat(join(guest, 'extracted/opt/app/run'))).mode & 0o777, 0o750);
  });

  await t.test('PutFiles: COPY --parents keeps each file\'s path below the context root or the /./ pivot', async () => {
    await mkdir(join(suite.contextDir, 'parents/cmd/tool'), { recursive: true });
    await mkdir(join(suite.contextDir, 'parents/pkg'), { recursive: true });
    await writeFile(join(suite.contextDir, 'parents/cmd/tool/main.go'), 'package main\n');
    await writeFile(join(suite.contextDir, 'parents/pkg/lib.go'), 'package pkg\n');
    await writeFile(join(suite.contextDir, 'parents/README.md'), 'readme\n');
    const context = await suite.resolveContext();
    const copied = async (patterns: string[], destination: string, parents: boolean): Promise<string[]> => {
      const listing = await suite.listFiles(context.contextId, patterns, { parents });
      await suite.putFiles({
        target: suite.target,
        contextId: context.contextId,
        sources: listing.sources.map((source) => ({ pattern: source.pattern, files: source.files })),
        destination,
        workingDir: guest,
        chown: '',
        extractArchives: false,
        preserveOwnership: false,
        buildId: 'b-test',
        stepIndex: 4,
      });
      const { stdout } = await run('find', ['.', '-type', 'f'], { cwd: join(guest, destination) });
      return stdout.split('\n').filter(Boolean).map((p) => p.slice(2)).sort();
    };
    // match root ".": paths stay relative to the context root
    assert.deepEqual(await copied(['parents/**/*.go'], 'kept/', true), ['parents/cmd/tool/main.go', 'parents/pkg/lib.go']);
    assert.deepEqual(await copied(['parents/./**/*.go'], 'pivoted', true), ['cmd/tool/main.go', 'pkg/lib.go']);
    // plain COPY: "**" is "*" and each match lands by its base name
    assert.deepEqual(await copied(['parents/**/*.go'], 'plain/', false), ['lib.go']);
  });

  await t.test('CloseSession closes the kept connection', async () => {
    assert.deepEqual(await suite.closeSession({ sessionId: suite.target.sessionId }), { closed: true });
    assert.deepEqual(await suite.closeSession({ sessionId: suite.target.sessionId }), { closed: false });
  });
});
