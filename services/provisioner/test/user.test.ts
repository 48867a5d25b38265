import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { NotFoundError } from '../src/domain/errors.ts';
import { resolveGuestUser, resolveOwner } from '../src/domain/guest-user.ts';
import { resolveStepUser } from '../src/domain/step-execution.ts';
import type { GuestConnection } from '../src/ports/guest-connector.ts';
import { startProvisionerFixture } from './support/provisioner-fixture.ts';
import { sshdUnavailableReason } from './support/test-sshd.ts';
import { testAccounts } from './support/test-users.ts';

const skip = await sshdUnavailableReason();

test('USER resolution follows Docker against passwd/group text', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n';
  const group = 'root:x:0:\napp:x:1000:\nstaff:x:50:app,other\naudio:x:29:app\n';
  assert.deepEqual(resolveGuestUser('app', passwd, group), { uid: 1000, gid: 1000, groups: [1000, 50, 29], home: '/home/app', name: 'app' });
  assert.deepEqual(resolveGuestUser('1000', passwd, group), { uid: 1000, gid: 1000, groups: [1000, 50, 29], home: '/home/app', name: 'app' });
  assert.deepEqual(resolveGuestUser('app:staff', passwd, group), { uid: 1000, gid: 50, groups: [], home: '/home/app', name: 'app' });
  assert.deepEqual(resolveGuestUser('4242:4343', passwd, group), { uid: 4242, gid: 4343, groups: [], home: '/' });
  assert.deepEqual(resolveGuestUser('4242', passwd, group), { uid: 4242, gid: 0, groups: [], home: '/' });
  assert.throws(() => resolveGuestUser('ghost', passwd, group), NotFoundError);
  assert.throws(() => resolveGuestUser('app:ghosts', passwd, group), NotFoundError);
});

test('--chown resolution follows BuildKit: a numeric user is its own group, a name takes its primary group', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\napp:x:1000:100::/home/app:/bin/sh\n';
  const group = 'root:x:0:\nusers:x:100:\nstaff:x:50:app\n';
  assert.deepEqual(resolveOwner('4242', passwd, group), { uid: 4242, gid: 4242 }, 'uid absent from passwd');
  assert.deepEqual(resolveOwner('1000', passwd, group), { uid: 1000, gid: 1000 }, 'uid present in passwd: still uid:uid');
  assert.deepEqual(resolveOwner('app', passwd, group), { uid: 1000, gid: 100 });
  assert.deepEqual(resolveOwner('app:staff', passwd, group), { uid: 1000, gid: 50 });
  assert.deepEqual(resolveOwner('4242:staff', passwd, group), { uid: 4242, gid: 50 });
  assert.deepEqual(resolveOwner('app:4343', passwd, group), { uid: 1000, gid: 4343 });
  assert.throws(() => resolveOwner('ghost', passwd, group), /unable to find user ghost/);
  assert.throws(() => resolveOwner('app:ghosts', passwd, group), (error: Error) => error instanceof NotFoundError && /--chown "app:ghosts": unable to find group ghosts/.test(error.message));
});

test('a guest without /etc/passwd or /etc/group still runs numeric users, as Docker does; names fail clearly', async () => {
  // only what resolveStepUser touches: both files missing (readFile fails, stat says absent)
  const noAccounts = {
    readFile: (path: string) => Promise.reject(new Error(`SFTP read ${path}: No such file`)),
    stat: async () => undefined,
  } as unknown as GuestConnection;
  assert.deepEqual(await resolveStepUser(noAccounts, '1000:1000'), { uid: 1000, gid: 1000, groups: [], home: '/' });
  assert.deepEqual(await resolveStepUser(noAccounts, '4242'), { uid: 4242, gid: 0, groups: [], home: '/' });
  await assert.rejects(resolveStepUser(noAccounts, 'app'), /unable to find user app/);
  const unreadable = { ...noAccounts, stat: async () => ({ type: 'file', mode: 0, uid: 0, gid: 0, size: 1 }) } as unknown as GuestConnection;
  await assert.rejects(resolveStepUser(unreadable, '1000'), /SFTP read \/etc\/passwd: No such file/, 'a file that is there but unreadable is still an error');
});

test('RUN as USER over a real sshd: id shows the uid, gid and groups Docker would give', { skip }, async (t) => {
  const fixture = await startProvisionerFixture();
  const accounts = testAccounts();
  t.after(async () => {
    await fixture.stop();
    await accounts.remove();
  });
  const extra = await accounts.group();
  const other = await accounts.group();
  const user = await accounts.user({ groups: [extra.name] });
  const id = async (spec: string): Promise<string> => {
    const result = await fixture.run({ argv: ['sh', '-c', 'echo "$(id -u) $(id -g) $(id -G) $HOME"'], user: spec });
    assert.deepEqual(result.outcome, { kind: 'exited', exitCode: 0 }, result.stderr);
    return result.stdout.trim();
  };

  await t.test('name: its uid, primary gid and supplementary groups', async () => {
    assert.equal(await id(user.name), `${user.uid} ${user.gid} ${user.gid} ${extra.gid} ${user.home}`);
  });
  await t.test('uid: resolved through passwd like the name', async () => {
    assert.equal(await id(String(user.uid)), `${user.uid} ${user.gid} ${user.gid} ${extra.gid} ${user.home}`);
  });
  await t.test('name:group: that group only', async () => {
    assert.equal(await id(`${user.name}:${other.name}`), `${user.uid} ${other.gid} ${other.gid} ${user.home}`);
  });
  await t.test('uid:gid not in passwd: taken as numbers', async () => {
    assert.equal(await id('54321:54322'), '54321 54322 54322 /');
  });
  await t.test('the created working directory belongs to the user, and so do the parents it created', async () => {
    const result = await fixture.run({ command: 'stat -c "%u:%g" . .. && touch mine', user: user.name, workdir: `${user.home}/work/dir/`, env: [] });
    const owner = `${user.uid}:${user.gid}`;
    assert.deepEqual(result.stdout.trim().split('\n'), [owner, owner], 'dir and the work directory above it');
    const root = `/tmp/kindling-workdir-${user.name}`;
    t.after(() => rm(root, { recursive: true, force: true }));
    const above = await fixture.run({ command: 'stat -c "%u:%g" . .. ../.. ../../..', user: user.name, workdir: `${root}/a/b` });
    assert.deepEqual(above.stdout.trim().split('\n'), [owner, owner, owner, '0:0'], 'the existing /tmp keeps its owner');
  });
  await t.test('an unknown user fails clearly before running anything', async () => {
    await assert.rejects(fixture.run({ command: 'true', user: 'no-such-user-kindling' }), (error: Error) => {
      assert.ok(error instanceof NotFoundError);
      assert.match(error.message, /unable to find user no-such-user-kindling.*\/etc\/passwd/);
      return true;
    });
  });
});
