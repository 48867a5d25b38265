/** generateSshKeyPair: keys OpenSSH and ssh2 read, whose halves match, also when the public key starts with a zero byte. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { generateSshKeyPair } from '../src/ssh-keys.ts';

const publicBytes = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64').subarray(4 + 11 + 4);

function assertUsable(keys: { public: string; private: string }): void {
  const priv = ssh2.utils.parseKey(keys.private);
  const pub = ssh2.utils.parseKey(keys.public);
  assert.ok(!(priv instanceof Error), `private key parses: ${String(priv)}`);
  assert.ok(!(pub instanceof Error), `public key parses: ${String(pub)}`);
  const one = Array.isArray(priv) ? priv[0]! : priv;
  const onePub = Array.isArray(pub) ? pub[0]! : pub;
  const data = Buffer.from('kindling');
  assert.ok(onePub.verify(data, one.sign(data) as Buffer), 'the public key verifies what the private key signs');
  assert.equal(one.getPublicSSH().toString('base64'), onePub.getPublicSSH().toString('base64'));
}

test('generated ed25519 keys parse with ssh2 and belong together, a leading zero byte included', () => {
  let leadingZero: { public: string; private: string } | undefined;
  for (let i = 0; i < 4000 && !leadingZero; i++) {
    const keys = generateSshKeyPair();
    if (i < 200) assertUsable(keys);
    if (publicBytes(keys.public)[0] === 0) leadingZero = keys;
  }
  assert.ok(leadingZero, 'a key whose public half starts with 0x00 turned up (1 in 256)');
  assert.equal(publicBytes(leadingZero.public).length, 32);
  assertUsable(leadingZero);
});

test('ssh-keygen reads the private key and derives the same public key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kindling-ssh-keys-'));
  try {
    const keys = generateSshKeyPair('build-key');
    const file = join(dir, 'id');
    writeFileSync(file, keys.private, { mode: 0o600 });
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    assert.equal(derived.split(' ').slice(0, 2).join(' '), keys.public.split(' ').slice(0, 2).join(' '));
    assert.ok(keys.public.endsWith(' build-key'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
