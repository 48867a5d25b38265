import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { E2fsprogsExt4Disk } from '../src/adapters/ext4/ext4-disk.ts';
import { FsImageStore } from '../src/adapters/fs/image-store.ts';
import { FsKernelStore } from '../src/adapters/fs/kernel-store.ts';
import { emptyImageMetadata, parseImageRef, type ImageRecord } from '../src/domain/image.ts';
import { guestFiles } from '../src/domain/guest-contract.ts';
import { SshKeygenHostKeys } from '../src/adapters/ssh-keygen/host-key.ts';
import { referenceDigest } from './support/reference-digest.ts';

const disk = new E2fsprogsExt4Disk();
const hasE2fsprogs = (() => {
  try {
    execFileSync('debugfs', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A tiny ext4 image made from a temp dir, like a base OS but 32 MiB. */
async function tinyImage(dir: string): Promise<string> {
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'etc/ssh'), { recursive: true });
  await writeFile(join(tree, 'etc/hostname'), 'tiny\n');
  const image = join(dir, 'tiny.ext4');
  execFileSync('truncate', ['-s', '32M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, image]);
  return image;
}

const fsck = (image: string): void => {
  execFileSync('e2fsck', ['-fn', image], { stdio: 'pipe' });
};


/** The per-VM files the vmm writes into a disk, for a VM of a base image. */
function testGuestFiles(vmId: string, hostKey: Parameters<typeof guestFiles>[0]['hostKey']) {
  return guestFiles({ vmId, hostname: vmId, authorizedKeys: ['ssh-ed25519 AAAATEST test'], hostKey, image: { base: true } as ImageRecord });
}

test('ext4 disk: sparse copy, grow, guest files with modes and owners, read back, remove, shrink, digest', async (t) => {
  if (!hasE2fsprogs) return t.skip('needs e2fsprogs (debugfs, resize2fs)');
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-ext4-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const source = await tinyImage(dir);
  const copy = join(dir, 'copy.ext4');
  await disk.copy(source, copy);
  assert.equal((await stat(copy)).size, 32 << 20);
  assert.ok((await stat(copy)).blocks * 512 < 32 << 20, 'the copy stays sparse');
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.includes('.tmp-')),
    [],
    'no staging file is left',
  );

  await disk.grow(copy, 64 << 20);
  assert.equal(await disk.filesystemBytes(copy), 64 << 20);

  const hostKey = await new SshKeygenHostKeys().generate('kindling-test');
  assert.match(hostKey.publicKey, /^ssh-ed25519 \S+ kindling-test$/);
  const files = testGuestFiles('vm-1', hostKey);
  await disk.writeFiles(copy, files.directories, files.files);
  // A second injection replaces the files instead of failing on "already exists".
  await disk.writeFiles(copy, files.directories, files.files);
  fsck(copy);
  // One read of three paths, one of them absent: only the two that exist come back.
  const read = await disk.readFiles(copy, [
    '/etc/kindling/guest.json',
    '/etc/nope',
    '/etc/ssh/ssh_host_ed25519_key',
  ]);
  assert.deepEqual([...read.keys()].sort(), ['/etc/kindling/guest.json', '/etc/ssh/ssh_host_ed25519_key']);
  const guestJson = JSON.parse(read.get('/etc/kindling/guest.json')!.toString()) as { vmId: string };
  assert.equal(guestJson.vmId, 'vm-1');
  assert.equal(read.get('/etc/ssh/ssh_host_ed25519_key')!.toString(), hostKey.privateKey);
  const stat700 = execFileSync('debugfs', ['-R', 'stat /root/.ssh', copy], { stdio: 'pipe' }).toString();
  assert.match(stat700, /Mode:\s+0700/);
  const statKey = execFileSync('debugfs', ['-R', 'stat /etc/ssh/ssh_host_ed25519_key', copy], {
    stdio: 'pipe',
  }).toString();
  assert.match(statKey, /Mode:\s+0600/);
  assert.match(statKey, /User:\s+0\s+Group:\s+0/);

  await disk.removeFiles(copy, ['/etc/kindling/guest.json', '/etc/not-there']);
  assert.equal((await disk.readFiles(copy, ['/etc/kindling/guest.json'])).size, 0);

  await disk.shrinkToMinimum(copy);
  const shrunk = (await stat(copy)).size;
  assert.ok(shrunk < 32 << 20, `shrunk to ${shrunk} bytes`);
  assert.equal(await disk.filesystemBytes(copy), shrunk);
  fsck(copy);

  assert.equal(await disk.digest(copy), referenceDigest(copy));
});

test('ext4 disk: removeFilesAndDigest keeps, strips and digests the stripped image as split | b3sum does', async (t) => {
  if (!hasE2fsprogs) return t.skip('needs e2fsprogs (debugfs)');
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-strip-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const image = await tinyImage(dir);
  await disk.grow(image, 96 << 20);
  // data in many 4 MiB blocks, so the identity's directory and inode blocks land past the first one
  const filler = join(dir, 'filler');
  await writeFile(filler, Buffer.alloc(40 << 20, 7));
  execFileSync('debugfs', ['-w', '-R', `write ${filler} /filler`, image], { stdio: 'pipe' });
  const hostKey = await new SshKeygenHostKeys().generate('kindling-test');
  const files = testGuestFiles('vm-2', hostKey);
  await disk.writeFiles(image, files.directories, files.files);
  const paths = files.files.map((f) => f.path);

  // a keep that fails leaves every file in place
  await assert.rejects(
    disk.removeFilesAndDigest(image, paths, async () => {
      throw new Error('no room for the identity');
    }),
    /no room for the identity/,
  );
  assert.equal((await disk.readFiles(image, paths)).size, paths.length);

  let kept: Map<string, Buffer> | undefined;
  let presentWhileKept = 0;
  const digest = await disk.removeFilesAndDigest(image, [...paths, '/etc/not-there'], async (found) => {
    kept = found;
    presentWhileKept = (await disk.readFiles(image, paths)).size;
  });
  assert.deepEqual([...kept!.keys()].sort(), [...paths].sort(), 'keep gets the files that exist');
  assert.equal(kept!.get('/etc/ssh/ssh_host_ed25519_key')!.toString(), hostKey.privateKey);
  assert.equal(presentWhileKept, paths.length, 'nothing is removed before keep resolves');
  assert.equal((await disk.readFiles(image, paths)).size, 0, 'then all are removed');
  fsck(image);
  assert.equal(digest, referenceDigest(image));
  assert.equal(digest, await disk.digest(image));
  // nothing left to remove (the run writes nothing), no keep
  assert.equal(await disk.removeFilesAndDigest(image, paths), referenceDigest(image));
});

test('image store: atomic put, get, list, replace, delete; kernels hard-linked', async (t) => {
  if (!hasE2fsprogs) return t.skip('needs e2fsprogs');
  const dir = await mkdtemp(join(tmpdir(), 'kindling-test-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const source = await tinyImage(dir);
  const images = new FsImageStore(join(dir, 'images'));
  const ref = parseImageRef('test/tiny:one');
  const record = (tag: string, digest: string): ImageRecord => ({
    name: 'test/tiny',
    tag,
    digest,
    sizeBytes: 32 << 20,
    created: new Date().toISOString(),
    parent: '',
    metadata: emptyImageMetadata(),
    base: true,
  });

  await assert.rejects(
    images.put(ref, async () => {
      throw new Error('copy failed');
    }),
    /copy failed/,
  );
  assert.deepEqual(await images.list(), [], 'a failed put leaves nothing');
  assert.deepEqual(await readdir(join(dir, 'images')), []);

  await images.put(ref, async (staging) => {
    await disk.copy(source, staging);
    return record('one', 'sha256:aa');
  });
  assert.equal((await images.get(ref))?.digest, 'sha256:aa');
  await images.put(ref, async (staging) => {
    await disk.copy(source, staging);
    return record('one', 'sha256:bb');
  });
  assert.equal((await images.get(ref))?.digest, 'sha256:bb', 'put replaces the tag');
  assert.deepEqual(
    (await images.list()).map((i) => `${i.name}:${i.tag}`),
    ['test/tiny:one'],
  );
  assert.ok((await stat(images.rootfsPath(ref))).isFile());
  assert.equal(await images.delete(ref), true);
  assert.equal(await images.delete(ref), false);
  assert.equal(await images.get(ref), undefined);
  assert.deepEqual(await readdir(join(dir, 'images')), [], 'empty name directories are pruned');

  const kernels = new FsKernelStore(join(dir, 'kernels'));
  const kernelFile = join(dir, 'vmlinuz');
  await writeFile(kernelFile, 'not really a kernel');
  const kernel = await kernels.put('test-1', '6.1.0-test', { bzImage: kernelFile });
  assert.equal(
    (await stat(kernel.bzImagePath!)).ino,
    (await stat(kernelFile)).ino,
    'same filesystem: hard link',
  );
  assert.deepEqual(
    (await kernels.list()).map((k) => k.id),
    ['test-1'],
  );
});

test('image refs: names and tags are checked, tag defaults to latest', () => {
  assert.deepEqual(parseImageRef('debian:12'), { name: 'debian', tag: '12' });
  assert.deepEqual(parseImageRef('registry/app'), { name: 'registry/app', tag: 'latest' });
  assert.throws(() => parseImageRef('../etc:x'), /not valid/);
  assert.throws(() => parseImageRef('Debian:12'), /not valid/);
  assert.throws(() => parseImageRef('debian:bad tag'), /not valid/);
});
