import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FailedPreconditionError, InvalidArgumentError } from '../src/domain/errors.ts';
import { directoryEntry, fileEntry, symlinkEntry } from './support/context-files.ts';
import { startProvisionerFixture } from './support/provisioner-fixture.ts';
import { sshdUnavailableReason } from './support/test-sshd.ts';
import { testAccounts } from './support/test-users.ts';

const run = promisify(execFile);
const skip = await sshdUnavailableReason();

test('PutFiles over a real sshd (blobs from memory)', { skip }, async (t) => {
  const fixture = await startProvisionerFixture();
  const accounts = testAccounts();
  const guest = await mkdtemp(join(tmpdir(), 'kindling-test-guest-'));
  t.after(async () => {
    await fixture.stop();
    await accounts.remove();
    await rm(guest, { recursive: true, force: true });
  });
  const blob = (data: Buffer): Buffer => {
    fixture.blobs.set(`sha256:${createHash('sha256').update(data).digest('hex')}`, data);
    return data;
  };

  await t.test('a file to a file path, a trailing "/" and a relative destination under WORKDIR', async () => {
    const data = blob(Buffer.from('hello\n'));
    const mtime = new Date('2021-02-03T04:05:06Z');
    const source = { pattern: 'hello.txt', files: [{ ...fileEntry('hello.txt', data, 0o640), mtime }] };
    await fixture.provisioner.putFiles(fixture.target, { sources: [source], destination: `${guest}/one/renamed.txt`, extractArchives: false });
    assert.equal(await readFile(`${guest}/one/renamed.txt`, 'utf8'), 'hello\n');
    assert.equal((await stat(`${guest}/one/renamed.txt`)).mode & 0o7777, 0o640);
    assert.equal((await stat(`${guest}/one/renamed.txt`)).mtime.getTime(), mtime.getTime(), 'COPY keeps the mtime');
    await fixture.provisioner.putFiles(fixture.target, { sources: [source], destination: 'two/', workingDir: guest, extractArchives: false });
    assert.equal(await readFile(`${guest}/two/hello.txt`, 'utf8'), 'hello\n');
    // an existing directory destination receives the file inside it
    await fixture.provisioner.putFiles(fixture.target, { sources: [source], destination: `${guest}/two`, extractArchives: false });
    assert.equal((await stat(`${guest}/two/hello.txt`)).isFile(), true);
  });

  await t.test('owners from a stage or image are kept (files, directories, symlinks, setuid intact); --chown wins', async () => {
    const tool = blob(Buffer.from('#!/bin/sh\necho tool\n'));
    const owned = <T extends object>(entry: T, uid: number, gid: number) => ({ ...entry, owner: { uid, gid } });
    const files = [
      owned(directoryEntry('out', 0o750, 'out'), 1234, 2345),
      owned(fileEntry('out/tool', tool, 0o4755, 'out'), 1234, 2345),
      owned(directoryEntry('out/docs', 0o700, 'out'), 42, 43),
      owned(symlinkEntry('out/link', 'tool', 'out'), 77, 78),
    ];
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'out', files }], destination: `${guest}/kept/`, extractArchives: false });
    const facts = async (path: string) => {
      const s = await lstat(path);
      return [s.uid, s.gid, s.mode & 0o7777];
    };
    assert.deepEqual(await facts(`${guest}/kept/tool`), [1234, 2345, 0o4755], 'owner kept, setuid survives the chown');
    assert.deepEqual(await facts(`${guest}/kept/docs`), [42, 43, 0o700]);
    assert.deepEqual((await facts(`${guest}/kept/link`)).slice(0, 2), [77, 78], 'the link itself is owned (lchown)');
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'out', files }], destination: `${guest}/chowned/`, chown: '5:6', extractArchives: false });
    assert.deepEqual(await facts(`${guest}/chowned/tool`), [5, 6, 0o4755]);
    assert.deepEqual((await facts(`${guest}/chowned/link`)).slice(0, 2), [5, 6]);
  });

  await t.test('a directory source copies its contents, with modes, symlinks and --chmod', async () => {
    const a = blob(Buffer.from('#!/bin/sh\necho a\n'));
    const b = blob(Buffer.from('b'));
    const files = [
      directoryEntry('src', 0o755, 'src'),
      fileEntry('src/run.sh', a, 0o755, 'src'),
      directoryEntry('src/sub', 0o700, 'src'),
      fileEntry('src/sub/b.txt', b, 0o600, 'src'),
      symlinkEntry('src/link', 'sub/b.txt', 'src'),
    ];
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'src', files }], destination: `${guest}/app`, extractArchives: false });
    assert.equal((await stat(`${guest}/app/run.sh`)).mode & 0o7777, 0o755);
    assert.equal((await stat(`${guest}/app/sub`)).mode & 0o7777, 0o700);
    assert.equal(await readFile(`${guest}/app/sub/b.txt`, 'utf8'), 'b');
    assert.equal(await readlink(`${guest}/app/link`), 'sub/b.txt');
    await assert.rejects(stat(`${guest}/app/src`), 'the directory itself is not copied');
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'src', files }], destination: `${guest}/chmod/`, chmod: 0o751, extractArchives: false });
    assert.equal((await stat(`${guest}/chmod/sub/b.txt`)).mode & 0o7777, 0o751);
    assert.equal((await stat(`${guest}/chmod/sub`)).mode & 0o7777, 0o751);
  });

  await t.test('directories the copy creates keep their source mtime; existing ones keep theirs', async () => {
    const data = blob(Buffer.from('m'));
    const old = new Date('2020-01-02T03:04:05Z');
    const files = [
      { ...directoryEntry('tree', 0o755, 'tree'), mtime: old },
      { ...directoryEntry('tree/sub', 0o755, 'tree'), mtime: old },
      { ...fileEntry('tree/sub/f', data, 0o644, 'tree'), mtime: old },
      { ...directoryEntry('tree/kept', 0o755, 'tree'), mtime: old },
      { ...fileEntry('tree/kept/g', data, 0o644, 'tree'), mtime: old },
    ];
    await mkdir(`${guest}/mtimes/kept`, { recursive: true });
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'tree', files }], destination: `${guest}/mtimes/`, extractArchives: false });
    assert.equal((await stat(`${guest}/mtimes/sub`)).mtime.getTime(), old.getTime(), 'created directory');
    assert.equal((await stat(`${guest}/mtimes/sub/f`)).mtime.getTime(), old.getTime(), 'file');
    assert.notEqual((await stat(`${guest}/mtimes/kept`)).mtime.getTime(), old.getTime(), 'existing directory');
  });

  await t.test('COPY dir /dest makes /dest 0755 whatever the source directory\'s mode, as BuildKit (fsutil prepareTargetDir: MkdirAll) does', async () => {
    const data = blob(Buffer.from('c'));
    const files = [directoryEntry('conf', 0o700, 'conf'), fileEntry('conf/app.ini', data, 0o640, 'conf')];
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'conf', files }], destination: `${guest}/as-dir`, extractArchives: false });
    assert.equal((await stat(`${guest}/as-dir`)).mode & 0o7777, 0o755);
    assert.equal((await stat(`${guest}/as-dir/app.ini`)).mode & 0o7777, 0o640);
  });

  await t.test('several sources need a destination ending in "/"', async () => {
    const x = blob(Buffer.from('x'));
    const sources = [
      { pattern: 'x', files: [fileEntry('x', x)] },
      { pattern: 'y', files: [fileEntry('y', x)] },
    ];
    await assert.rejects(fixture.provisioner.putFiles(fixture.target, { sources, destination: `${guest}/multi`, extractArchives: false }), InvalidArgumentError);
    await fixture.provisioner.putFiles(fixture.target, { sources, destination: `${guest}/multi/`, extractArchives: false });
    assert.equal(await readFile(`${guest}/multi/y`, 'utf8'), 'x');
  });

  await t.test('--chown names are resolved in the guest and applied to files and created directories', async () => {
    const group = await accounts.group();
    const user = await accounts.user();
    const data = blob(Buffer.from('owned'));
    const files = [directoryEntry('d'), fileEntry('d/f', data, 0o4755, 'd'), symlinkEntry('d/l', 'f', 'd')];
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'd', files }], destination: `${guest}/owned/deep/`, chown: `${user.name}:${group.name}`, extractArchives: false });
    const file = await stat(`${guest}/owned/deep/f`);
    assert.deepEqual([file.uid, file.gid, file.mode & 0o7777], [user.uid, group.gid, 0o4755], 'setuid survives the chown');
    const link = await lstat(`${guest}/owned/deep/l`);
    assert.deepEqual([link.isSymbolicLink(), link.uid, link.gid], [true, user.uid, group.gid], 'the link itself is chowned');
    const created = await stat(`${guest}/owned/deep`);
    assert.deepEqual([created.uid, created.gid], [user.uid, group.gid]);
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'd', files }], destination: `${guest}/owned2/`, chown: user.name, extractArchives: false });
    assert.equal((await stat(`${guest}/owned2/f`)).gid, user.gid, 'a bare user takes its primary group');
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'd', files }], destination: `${guest}/owned3/`, chown: '54321', extractArchives: false });
    const numeric = await stat(`${guest}/owned3/f`);
    assert.deepEqual([numeric.uid, numeric.gid], [54321, 54321], 'a bare numeric user is its own group, as BuildKit does');
    await assert.rejects(
      fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'd', files }], destination: `${guest}/x/`, chown: 'ghost-kindling', extractArchives: false }),
      /unable to find user ghost-kindling/,
    );
  });

  await t.test('a blob whose bytes do not match its digest is not put in place', async () => {
    const entry = fileEntry('bad', Buffer.from('expected'));
    fixture.blobs.set(entry.digest, Buffer.from('tampered'));
    await assert.rejects(
      fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'bad', files: [entry] }], destination: `${guest}/bad/`, extractArchives: false }),
      /did not match/,
    );
    assert.deepEqual((await run('ls', ['-A', `${guest}/bad`])).stdout, '', 'no temp file or target left');
  });

  await t.test('ADD extracts tar, tar.gz, tar.bz2 and tar.xz; other files are copied as they are', async () => {
    const tree = await mkdtemp(join(tmpdir(), 'kindling-test-tar-'));
    t.after(() => rm(tree, { recursive: true, force: true }));
    await mkdir(join(tree, 'pkg/bin'), { recursive: true });
    await writeFile(join(tree, 'pkg/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(tree, 'pkg/README'), 'readme\n', { mode: 0o644 });
    for (const [flag, name] of [['', 'a.tar'], ['-z', 'a.tar.gz'], ['-j', 'a.tar.bz2'], ['-J', 'a.tar.xz']] as const) {
      await run('tar', ['-c', ...(flag ? [flag] : []), '-f', join(tree, name), '-C', tree, 'pkg']);
      const data = blob(await readFile(join(tree, name)));
      const summary = await fixture.provisioner.putFiles(fixture.target, {
        sources: [{ pattern: name, files: [fileEntry(name, data)] }],
        destination: `${guest}/extract-${name}`,
        extractArchives: true,
      });
      assert.equal(summary.archivesExtracted, 1, name);
      assert.equal(await readFile(`${guest}/extract-${name}/pkg/README`, 'utf8'), 'readme\n', name);
      assert.equal((await stat(`${guest}/extract-${name}/pkg/bin/tool`)).mode & 0o777, 0o755, name);
      assert.deepEqual((await run('ls', ['-A', `${guest}/extract-${name}`])).stdout, 'pkg\n', `${name}: no staging left`);
    }
    const gzNotTar = blob(await promisify(execFile)('sh', ['-c', 'printf plain | gzip -c'], { encoding: 'buffer' }).then((r) => r.stdout as Buffer));
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'p.gz', files: [fileEntry('p.gz', gzNotTar)] }], destination: `${guest}/notar/`, extractArchives: true });
    assert.deepEqual(await readFile(`${guest}/notar/p.gz`), gzNotTar);
    const remoteTar = blob(await readFile(join(tree, 'a.tar.gz')));
    await fixture.provisioner.putFiles(fixture.target, {
      sources: [{ pattern: 'https://example.com/a.tar.gz', files: [fileEntry('a.tar.gz', remoteTar)] }],
      destination: `${guest}/remote/`,
      extractArchives: true,
    });
    assert.deepEqual(await readFile(`${guest}/remote/a.tar.gz`), remoteTar, 'an archive from a URL is copied, not unpacked');
    const text = blob(Buffer.from('just text'));
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 't', files: [fileEntry('t', text)] }], destination: `${guest}/notar/t`, extractArchives: true });
    assert.equal(await readFile(`${guest}/notar/t`, 'utf8'), 'just text');
  });

  await t.test('ADD keeps the numeric owners of the archive, as Docker does, not the owner names mapped through the guest', async () => {
    const tree = await mkdtemp(join(tmpdir(), 'kindling-test-tar-'));
    t.after(() => rm(tree, { recursive: true, force: true }));
    await writeFile(join(tree, 'f'), 'f');
    // "daemon" is uid/gid 1 in the guest; the archive says 12345:23456 under that name
    await run('tar', ['-c', '--owner=daemon:12345', '--group=daemon:23456', '-f', join(tree, 'ids.tar'), '-C', tree, 'f']);
    const data = blob(await readFile(join(tree, 'ids.tar')));
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'ids.tar', files: [fileEntry('ids.tar', data)] }], destination: `${guest}/ids/`, extractArchives: true });
    const f = await lstat(`${guest}/ids/f`);
    assert.deepEqual([f.uid, f.gid], [12345, 23456]);
  });

  await t.test('ADD --chown applies to extracted files', async () => {
    const user = await accounts.user();
    const tree = await mkdtemp(join(tmpdir(), 'kindling-test-tar-'));
    t.after(() => rm(tree, { recursive: true, force: true }));
    await writeFile(join(tree, 'f'), 'f');
    await run('tar', ['-cz', '-f', join(tree, 'o.tgz'), '-C', tree, 'f']);
    const data = blob(await readFile(join(tree, 'o.tgz')));
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'o.tgz', files: [fileEntry('o.tgz', data)] }], destination: `${guest}/owned-x/`, chown: user.name, extractArchives: true });
    const f = await lstat(`${guest}/owned-x/f`);
    assert.deepEqual([f.uid, f.gid], [user.uid, user.gid]);
  });

  await t.test('a symlink replaces an existing file or symlink at its path, as Docker does', async () => {
    await mkdir(`${guest}/relink`, { recursive: true });
    await writeFile(`${guest}/relink/was-file`, 'old');
    await run('ln', ['-s', 'elsewhere', `${guest}/relink/was-link`]);
    const files = [directoryEntry('l'), symlinkEntry('l/was-file', 'new-target', 'l'), symlinkEntry('l/was-link', 'new-target', 'l')];
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'l', files }], destination: `${guest}/relink/`, extractArchives: false });
    assert.equal(await readlink(`${guest}/relink/was-file`), 'new-target');
    assert.equal(await readlink(`${guest}/relink/was-link`), 'new-target');
  });

  await t.test('a single file onto a symlink to a directory lands inside that directory; the symlink stays', async () => {
    await mkdir(`${guest}/real-dir`, { recursive: true });
    await run('ln', ['-s', `${guest}/real-dir`, `${guest}/link-dir`]);
    const data = blob(Buffer.from('through the link'));
    await fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'f.txt', files: [fileEntry('f.txt', data)] }], destination: `${guest}/link-dir`, extractArchives: false });
    assert.equal((await lstat(`${guest}/link-dir`)).isSymbolicLink(), true);
    assert.equal(await readFile(`${guest}/real-dir/f.txt`, 'utf8'), 'through the link');
  });

  await t.test('a guest filesystem error names the operation and the path (FAILED_PRECONDITION, not a bare "No such file")', async () => {
    const data = blob(Buffer.from('p'));
    await assert.rejects(
      fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'p', files: [fileEntry('p', data)] }], destination: '/proc/kindling-no-such-dir/', extractArchives: false }),
      (error: Error) => error instanceof FailedPreconditionError && /SFTP mkdir \/proc\/kindling-no-such-dir in the guest failed: No such file/.test(error.message),
    );
    await assert.rejects(
      fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'p', files: [fileEntry('p', data)] }], destination: '/sys/kernel/kindling-file', extractArchives: false }),
      (error: Error) => error instanceof FailedPreconditionError && /SFTP open \/sys\/kernel\/\.kindling-file\.kindling-[0-9a-f]+ for writing in the guest failed: Permission denied/.test(error.message),
    );
  });

  await t.test('a file cannot replace a directory', async () => {
    await mkdir(`${guest}/isdir/x`, { recursive: true });
    const data = blob(randomBytes(10));
    await assert.rejects(
      fixture.provisioner.putFiles(fixture.target, { sources: [{ pattern: 'x', files: [fileEntry('x', data)] }], destination: `${guest}/isdir/`, extractArchives: false }),
      FailedPreconditionError,
    );
  });

  await t.test('a file staged on the transfer disk is read from the device; one the guest cannot read there goes through SSH', async () => {
    const MIB = 1024 * 1024;
    const data = blob(randomBytes(1.5 * MIB + 17));
    const other = blob(randomBytes(MIB));
    // the "device" is a file here: dd reads it with O_DIRECT as it reads /dev/vdb in a VM
    const device = join(guest, 'transfer.img');
    await writeFile(device, Buffer.concat([Buffer.alloc(MIB), data, Buffer.alloc(3 * MIB - data.length)]));
    const mtime = new Date('2022-03-04T05:06:07.250Z');
    const entries = [{ ...fileEntry('data.bin', data, 0o640), mtime }, fileEntry('other.bin', other, 0o600)];
    const offsets = new Map([[entries[0]!.digest, MIB], [entries[1]!.digest, 5 * MIB]]);
    const summary = await fixture.provisioner.putFiles(fixture.target, {
      sources: [{ pattern: '*.bin', files: entries }],
      destination: `${guest}/staged/`,
      chown: '5:6',
      extractArchives: false,
      transferDisk: { device, offsets },
    });
    assert.ok((await readFile(`${guest}/staged/data.bin`)).equals(data), 'the bytes at the offset, cut to the file size');
    const facts = await stat(`${guest}/staged/data.bin`);
    assert.deepEqual([facts.mode & 0o7777, facts.uid, facts.gid, facts.mtime.getTime()], [0o640, 5, 6, mtime.getTime()]);
    assert.ok((await readFile(`${guest}/staged/other.bin`)).equals(other), 'past the end of the device: sent through SSH after all');
    assert.deepEqual([summary.filesWritten, summary.filesFromTransferDisk, summary.bytesWritten], [2, 1, data.length + other.length]);
  });
});
