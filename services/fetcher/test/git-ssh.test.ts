import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, stopChild, waitForPort } from '@kindling/runtime/testing';
import { sshCommandPort } from '../src/adapters/git/git-pinning.ts';
import { PermissionDeniedError } from '../src/domain/errors.ts';
import { git } from './git-http.ts';
import { PINNED_ADDRESS, pinnedGitLoader, scriptedResolver, startPinnedRelay } from './pinned-git.ts';
import { startTestFetcher, tempDir } from './support.ts';

test('git contexts over ssh: ssh:// and scp-like git@host:path forms', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to run a private sshd');
  if (!existsSync('/usr/sbin/sshd')) return t.skip('needs openssh-server (/usr/sbin/sshd)');
  const dir = await tempDir(t);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  await writeFile(join(dir, 'authorized_keys'), execFileSync('cat', [join(dir, 'client_key.pub')]));
  const port = await freePort();
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      '',
    ].join('\n'),
  );
  await mkdir('/run/sshd', { recursive: true });
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.after(() => stopChild(sshd));
  let sshdLog = '';
  sshd.stderr.on('data', (c: Buffer) => (sshdLog += c.toString()));
  await waitForPort(port, { child: sshd, timeoutMs: 5000, what: 'sshd', output: () => sshdLog });

  const work = join(dir, 'work');
  await mkdir(work);
  git(work, 'init', '-q', '-b', 'main');
  await writeFile(join(work, 'Dockerfile'), 'FROM debian\n');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'one');
  const commit = git(work, 'rev-parse', 'HEAD');
  const repo = join(dir, 'repo.git');
  git(dir, 'clone', '-q', '--bare', work, repo);

  const sshCommand = `ssh -p ${port} -i ${join(dir, 'client_key')} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
  const fetcher = await startTestFetcher(t, [`--git-ssh-command=${sshCommand}`]);
  for (const url of [
    `ssh://root@127.0.0.1:${port}${repo}#main`,
    `git+ssh://root@127.0.0.1:${port}${repo}`,
    `root@127.0.0.1:${repo}#main`,
  ]) {
    const ctx = await fetcher.resolve({ source: { $case: 'git', value: { url } } });
    assert.equal(ctx.gitCommit, commit, url);
    assert.equal(ctx.dockerfile, 'FROM debian\n');
  }

  // By name: ssh is pinned to the address the fetcher resolved and checked, and the host key is
  // still checked under the name ([name]:port, as ssh records a non-22 port) with a strict known_hosts.
  const relay = await startPinnedRelay(t, port);
  const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `[localhost]:${relay.port} ${hostKey}\n`);
  const strict = `-i ${join(dir, 'client_key')} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${knownHosts} -o LogLevel=ERROR`;
  // DNS rebinding: the name answers the loopback address once, then a metadata address.
  const rebinding = scriptedResolver(PINNED_ADDRESS, '169.254.169.254');
  const load = await pinnedGitLoader(t, rebinding, { sshCommand: `ssh -p ${relay.port} ${strict}` });
  assert.equal((await load(`root@localhost:${repo}#main`)).gitCommit, commit);
  assert.equal(relay.connections(), 1);
  await assert.rejects(load(`root@localhost:${repo}`), (err) => {
    assert.ok(err instanceof PermissionDeniedError, String(err));
    assert.match(err.message, /resolves to 169\.254\.169\.254/);
    return true;
  });
  assert.equal(relay.connections(), 1, 'refused before ssh ran');
  assert.deepEqual(rebinding.asked, ['localhost', 'localhost']);
  // The port from an ssh:// URL, with a command that names none.
  const byUrl = await pinnedGitLoader(t, scriptedResolver(PINNED_ADDRESS), { sshCommand: `ssh ${strict}` });
  assert.equal((await byUrl(`ssh://root@localhost:${relay.port}${repo}#main`)).gitCommit, commit);
  assert.equal(relay.connections(), 2);
});

test('the port a pinned host key is looked up under comes from the ssh command first, as ssh takes it', () => {
  for (const [command, port] of [
    ['ssh -p 2222 -i key', 2222],
    ['ssh -i key -p2201 -p 2202', 2201],
    ['ssh -o Port=2203', 2203],
    ['ssh -oPort=2204', 2204],
    ['ssh -o port 2205', 2205],
    ['ssh -o BatchMode=yes -i /keys/-p9', undefined],
    ['ssh', undefined],
  ] as const) {
    assert.equal(sshCommandPort(command), port, command);
  }
});
