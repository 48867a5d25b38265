import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '@kindling/runtime/testing';
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from '../src/domain/errors.ts';
import { fingerprintOf, parseHostPublicKey } from '../src/domain/host-key.ts';
import type { ConnectAttempt } from '../src/ports/guest-connector.ts';
import { startProvisionerFixture } from './support/provisioner-fixture.ts';
import { generateEd25519KeyPair, sshdUnavailableReason, startTestSshd } from './support/test-sshd.ts';

const run = promisify(execFile);
const skip = await sshdUnavailableReason();

test('connections: pinned host keys, refused keys, WaitReady', { skip }, async (t) => {
  const fixture = await startProvisionerFixture();
  t.after(() => fixture.stop());
  const other = await generateEd25519KeyPair(fixture.sshd.dir, 'impostor');

  await t.test('a host key mismatch is refused and shows both fingerprints', async () => {
    const expected = parseHostPublicKey(other.publicKey);
    const actual = parseHostPublicKey(fixture.sshd.hostPublicKey);
    await assert.rejects(fixture.provisioner.exec({ ...fixture.target, sessionId: 'mismatch', hostKey: other.publicKey }, { command: 'true', env: [] }, () => {}), (error: Error) => {
      assert.ok(error instanceof FailedPreconditionError, String(error));
      assert.ok(error.message.includes(expected.fingerprint), error.message);
      assert.ok(error.message.includes(actual.fingerprint), error.message);
      assert.equal(actual.fingerprint, fingerprintOf(actual.blob));
      return true;
    });
  });

  await t.test('a wrong client key is refused', async () => {
    await assert.rejects(
      fixture.provisioner.exec({ ...fixture.target, sessionId: 'wrong-key', privateKey: other.privateKey }, { command: 'true', env: [] }, () => {}),
      PermissionDeniedError,
    );
  });

  await t.test('a pinned key of a type the server does not have is a mismatch naming the expected fingerprint', async () => {
    await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', join(fixture.sshd.dir, 'other_ecdsa')]);
    const ecdsa = (await run('cat', [join(fixture.sshd.dir, 'other_ecdsa.pub')])).stdout.trim();
    const expected = parseHostPublicKey(ecdsa);
    await assert.rejects(fixture.provisioner.waitReady({ ...fixture.target, sessionId: 'ecdsa', hostKey: ecdsa }, { timeoutMs: 5000 }), (error: Error) => {
      assert.ok(error instanceof FailedPreconditionError, String(error));
      assert.match(error.message, new RegExp(`host key mismatch for root@127\\.0\\.0\\.1:\\d+ .*expected ecdsa-sha2-nistp256 ${expected.fingerprint.replace(/[+/]/g, '\\$&')}, the server has no ecdsa-sha2-nistp256 host key`));
      return true;
    });
  });

  await t.test('a malformed private key is INVALID_ARGUMENT naming the target, and the key is not echoed', async () => {
    const garbage = 'not-a-key-kindling-secret-material';
    await assert.rejects(fixture.provisioner.waitReady({ ...fixture.target, sessionId: 'bad-key', privateKey: garbage }, { timeoutMs: 5000 }), (error: Error) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.match(error.message, /target\.private_key for root@127\.0\.0\.1:\d+ .* is not a usable private key/);
      assert.doesNotMatch(error.message, /kindling-secret-material/);
      return true;
    });
  });

  await t.test('an ssh-agent can hold the key instead of the request', async (t) => {
    const socket = join(fixture.sshd.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    t.after(() => {
      agent.kill('SIGTERM');
    });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await run('ssh-add', ['-q', join(fixture.sshd.dir, 'client_ed25519_key')], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
    const out: Buffer[] = [];
    const { privateKey: _unused, ...withoutKey } = fixture.target;
    await fixture.provisioner.exec({ ...withoutKey, sessionId: 'agent', agentSocket: socket }, { command: 'echo via-agent', env: [] }, (c) => void out.push(c.data));
    assert.equal(Buffer.concat(out).toString(), 'via-agent\n');
    await fixture.provisioner.closeSession('agent');
  });

  await t.test('no host key and no explicit opt-out is an invalid target', () => {
    assert.throws(() => fixture.provisioner.target({ ...fixture.target, hostKey: '' }), InvalidArgumentError);
    assert.throws(() => fixture.provisioner.target({ ...fixture.target, hostKey: '', acceptAnyHostKey: true }), /does not allow/);
  });

  await t.test('WaitReady stops at once on a host key mismatch', async () => {
    const attempts: ConnectAttempt[] = [];
    await assert.rejects(
      fixture.provisioner.waitReady({ ...fixture.target, sessionId: 'wait-mismatch', hostKey: other.publicKey }, { timeoutMs: 5000, onAttempt: (a) => attempts.push(a) }),
      FailedPreconditionError,
    );
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.retryable, false);
  });

  await t.test('WaitReady retries until a port that opens late accepts SSH', async (t) => {
    const port = await freePort();
    const late = await startTestSshd({ port, startDelayMs: 1500 });
    t.after(() => late.stop());
    const attempts: ConnectAttempt[] = [];
    const result = await fixture.provisioner.waitReady(
      { sessionId: 'late', host: late.host, port, privateKey: late.clientPrivateKey, hostKey: late.hostPublicKey },
      { timeoutMs: 20_000, onAttempt: (a) => attempts.push(a) },
    );
    assert.ok(result.attempts > 1, `took ${result.attempts} attempts`);
    assert.ok(attempts.slice(0, -1).every((a) => a.retryable && a.error), 'earlier attempts were retryable failures');
    const out: Buffer[] = [];
    await fixture.provisioner.exec({ sessionId: 'late', host: late.host, port, privateKey: late.clientPrivateKey, hostKey: late.hostPublicKey }, { command: 'echo up', env: [] }, (c) => void out.push(c.data));
    assert.equal(Buffer.concat(out).toString(), 'up\n');
    await fixture.provisioner.closeSession('late');
  });

  await t.test('WaitReady against a closed port fails at the deadline', async () => {
    const port = await freePort();
    const started = Date.now();
    await assert.rejects(
      fixture.provisioner.waitReady({ ...fixture.target, sessionId: 'closed', port }, { timeoutMs: 1200 }),
      (error: Error) => {
        assert.ok(error instanceof DeadlineExceededError, String(error));
        assert.match(error.message, /not ready within 1200 ms/);
        return true;
      },
    );
    assert.ok(Date.now() - started >= 1200);
  });

  await t.test('WaitReady against a server that never answers says the attempt was cut by the deadline, not "cancelled"', async (t) => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket)); // accepts TCP, never speaks SSH
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    const port = (silent.address() as AddressInfo).port;
    await assert.rejects(fixture.provisioner.waitReady({ ...fixture.target, sessionId: 'silent', port }, { timeoutMs: 800 }), (error: Error) => {
      assert.ok(error instanceof DeadlineExceededError, String(error));
      assert.match(error.message, /still connecting \(TCP, SSH handshake or authentication\) when time ran out/);
      assert.doesNotMatch(error.message, /cancelled/);
      return true;
    });
  });

  await t.test('a dropped connection is re-opened transparently for the next step', async () => {
    // the shell's parent is the session's sshd, whose parent is the connection's sshd
    const connectionPid = async (): Promise<string> => (await fixture.run({ command: 'ps -o ppid= -p $PPID' })).stdout.trim();
    const before = await connectionPid();
    await fixture.run({ command: `kill -TERM ${before}` }).catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = await connectionPid();
    assert.match(after, /^\d+$/);
    assert.notEqual(after, before, 'a new connection serves the next step');
  });
});
