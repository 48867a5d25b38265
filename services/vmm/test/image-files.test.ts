/**
 * Image files over real gRPC, no VM boots: ExportImageFiles read with debugfs from an ext4 image made
 * with mkfs.ext4 -d (owners, setuid, 0700 dirs, symlinks in parents and as the asked path, hard links,
 * an empty dir, a 100 MiB file), CreateImageFromArchive round trips and bad uploads, TagImage sharing the
 * rootfs, ListImages' internal images, and CreateVm refusing an image without /sbin/init.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chown, lchown, link, lutimes, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type {
  GetImageResponse,
  ListImagesResponse,
  TagImageResponse,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { referenceDigest } from './support/reference-digest.ts';
import { END_OF_ARCHIVE, archiveMessages, exportFiles, listTar, uploadArchive, ustarEntry } from './support/tar-entries.ts';
import { call, makeTempDir, needsRootAnd, removeDir, startTestVmm, type VmmUnderTest } from './support/vmm-harness.ts';

const skip = needsRootAnd(['debugfs', 'mkfs.ext4', 'tar', 'ip']);

const code = (error: unknown) => (error as ServiceError).code;
const details = (error: unknown) => (error as ServiceError).details;
const BIG = 100 * 1024 * 1024;
const TOOL_MTIME = new Date('2021-03-04T05:06:07Z');
const LINK_MTIME = new Date('2019-01-02T03:04:05Z');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `debugfs -R <request>` on an image file, its stdout. */
const debugfs = (image: string, request: string) =>
  execFileSync('debugfs', ['-R', request, image], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });

describe('vmm image files: export, archive upload, tag, internal images', { skip }, () => {
  let dir: string;
  let vmm: VmmUnderTest;
  let bigContent: Buffer;
  const stateDir = () => join(dir, 'state');
  const scratchLeft = async () => readdir(join(stateDir(), 'scratch')).catch(() => []);
  const storeLeftovers = async () => (await readdir(join(stateDir(), 'images'))).filter((name) => name.startsWith('.'));
  const rootfsOf = (name: string, tag: string) => join(stateDir(), 'images', ...name.split('/'), tag, 'rootfs.ext4');

  before(async () => {
    dir = await makeTempDir('image-files');
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'app/bin'), { recursive: true });
    await mkdir(join(tree, 'app/secret'), { recursive: true, mode: 0o700 });
    await mkdir(join(tree, 'app/empty'), { recursive: true });
    await mkdir(join(tree, 'data'), { recursive: true });
    await mkdir(join(tree, 'usr/lib'), { recursive: true });
    await writeFile(join(tree, 'app/bin/tool'), '#!/bin/sh\necho tool\n');
    await chown(join(tree, 'app/bin/tool'), 1000, 1001);
    // after the chown, which would clear setuid
    execFileSync('chmod', ['4755', join(tree, 'app/bin/tool')]);
    await utimes(join(tree, 'app/bin/tool'), TOOL_MTIME, TOOL_MTIME);
    await link(join(tree, 'app/bin/tool'), join(tree, 'app/hard'));
    await writeFile(join(tree, 'app/secret/key'), 'secret\n', { mode: 0o600 });
    await chown(join(tree, 'app/secret/key'), 1234, 5678);
    await chown(join(tree, 'app/secret'), 1234, 5678);
    execFileSync('chmod', ['0700', join(tree, 'app/secret')]);
    await symlink('/data', join(tree, 'app/link-abs'));
    await lchown(join(tree, 'app/link-abs'), 42, 43);
    await lutimes(join(tree, 'app/link-abs'), LINK_MTIME, LINK_MTIME);
    await symlink('bin/tool', join(tree, 'app/link-rel'));
    await writeFile(join(tree, 'data/inner.txt'), 'inner\n');
    await writeFile(join(tree, 'usr/lib/libx.so'), 'library\n');
    await symlink('usr/lib', join(tree, 'lib'));
    await writeFile(join(tree, 'app/with space "q"'), 'odd name\n');
    // 100 MiB: data at both ends, a hole between
    bigContent = Buffer.alloc(BIG);
    bigContent.write('start of big', 0);
    bigContent.write('end of big', BIG - 16);
    await writeFile(join(tree, 'data/big'), bigContent);
    await utimes(join(tree, 'app'), TOOL_MTIME, TOOL_MTIME);
    execFileSync('truncate', ['-s', '256M', join(dir, 'files.ext4')]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, join(dir, 'files.ext4')]);
    await writeFile(join(dir, 'vmlinuz'), 'not a kernel: these tests never boot');
    vmm = await startTestVmm({ stateDir: stateDir(), cniConfDir: join(dir, 'conf.d'), cniCacheDir: join(dir, 'cni-cache') });
    await vmm.running.host.deps.kernels.put('test-kernel', '0.0.0-test', { bzImage: join(dir, 'vmlinuz') });
    await call(vmm.client, 'importImage', { rootfsPath: join(dir, 'files.ext4'), image: 'test/files:one', kernelId: 'test-kernel', overwrite: false });
  });
  after(async () => {
    await vmm?.stop();
    if (dir) await removeDir(dir);
  });

  it('exports a directory with owners, setuid, 0700 dirs, symlinks kept as symlinks, hard links and mtimes', async () => {
    const archive = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/app'] });
    const entries = new Map(listTar(archive).map((e) => [e.name.replace(/\/$/, ''), e]));
    assert.deepEqual([...entries.keys()].sort(), [
      'app',
      'app/bin',
      'app/bin/tool',
      'app/empty',
      'app/hard',
      'app/link-abs',
      'app/link-rel',
      'app/secret',
      'app/secret/key',
      'app/with space "q"',
    ]);
    // one name of the inode is the file, the other a hard link to it (whichever tar met first is the file)
    const names = [entries.get('app/bin/tool')!, entries.get('app/hard')!];
    const file = names.find((e) => e.mode.startsWith('-'));
    const hardLink = names.find((e) => e.mode.startsWith('h'));
    assert.equal(file?.mode, '-rwsr-xr-x');
    assert.equal(file?.owner, '1000/1001');
    assert.equal(hardLink?.link, `link to ${file?.name}`);
    assert.equal(entries.get('app/secret')!.mode, 'drwx------');
    assert.equal(entries.get('app/secret')!.owner, '1234/5678');
    assert.equal(entries.get('app/secret/key')!.mode, '-rw-------');
    assert.equal(entries.get('app/secret/key')!.owner, '1234/5678');
    assert.equal(entries.get('app/empty')!.mode, 'drwxr-xr-x');
    assert.equal(entries.get('app/link-abs')!.mode, 'lrwxrwxrwx');
    assert.equal(entries.get('app/link-abs')!.link, '-> /data');
    assert.equal(entries.get('app/link-abs')!.owner, '42/43');
    assert.equal(entries.get('app/link-rel')!.link, '-> bin/tool');

    // extracted as root, everything is as it was in the image, mtimes included
    const out = join(dir, 'extract-app');
    await mkdir(out);
    execFileSync('tar', ['-x', '--numeric-owner', '-p', '-C', out], { input: archive });
    const toolStat = await stat(join(out, 'app/bin/tool'));
    assert.equal(toolStat.mtime.getTime(), TOOL_MTIME.getTime());
    assert.equal(toolStat.mode & 0o7777, 0o4755);
    assert.equal((await stat(join(out, 'app/hard'))).ino, toolStat.ino);
    assert.equal((await stat(join(out, 'app'))).mtime.getTime(), TOOL_MTIME.getTime());
    const linkTimes = execFileSync('stat', ['-c', '%Y', join(out, 'app/link-abs')]).toString().trim();
    assert.equal(Number(linkTimes), LINK_MTIME.getTime() / 1000);
    assert.equal(await readFile(join(out, 'app/with space "q"'), 'utf8'), 'odd name\n');
    assert.deepEqual(await scratchLeft(), [], 'the scratch copy is removed');
  });

  it('resolves symlinks in parents and the asked path itself inside the image, naming entries as asked', async () => {
    const archive = await exportFiles(vmm.client, {
      image: 'test/files:one',
      paths: ['/lib/libx.so', '/app/link-abs/inner.txt', '/app/link-rel', '/app/link-abs'],
    });
    const entries = new Map(listTar(archive).map((e) => [e.name.replace(/\/$/, ''), e]));
    assert.deepEqual([...entries.keys()].sort(), [
      'app/link-abs',
      'app/link-abs/big',
      'app/link-abs/inner.txt',
      'app/link-rel',
      'lib/libx.so',
    ]);
    // the asked path is followed (/app/link-rel -> bin/tool, /app/link-abs -> /data in the image, not the host's)
    assert.equal(entries.get('app/link-rel')!.mode, '-rwsr-xr-x');
    assert.equal(entries.get('app/link-rel')!.owner, '1000/1001');
    assert.equal(entries.get('app/link-abs')!.mode.startsWith('d'), true);
    assert.equal(entries.get('lib/libx.so')!.mode, '-rw-r--r--');
    const out = join(dir, 'extract-links');
    await mkdir(out);
    execFileSync('tar', ['-x', '--numeric-owner', '-p', '-C', out], { input: archive, maxBuffer: 1 << 28 });
    assert.equal(await readFile(join(out, 'lib/libx.so'), 'utf8'), 'library\n');
    assert.equal(await readFile(join(out, 'app/link-rel'), 'utf8'), '#!/bin/sh\necho tool\n');
  });

  it('streams a 100 MiB file whole', async () => {
    const archive = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/data/big'] });
    const [entry] = listTar(archive);
    assert.equal(entry?.name, 'data/big');
    assert.equal(entry?.size, BIG);
    const content = execFileSync('tar', ['-x', '-O', '-f', '-', 'data/big'], { input: archive, maxBuffer: BIG * 2 });
    assert.equal(sha256(content), sha256(bigContent));
  });

  it('answers NOT_FOUND for a missing path (unless allow_missing) or image, INVALID_ARGUMENT for a relative path', async () => {
    await assert.rejects(
      exportFiles(vmm.client, { image: 'test/files:one', paths: ['/app', '/nope/x'] }),
      (e) => code(e) === Status.NOT_FOUND && /\/nope\/x/.test(details(e)) && /test\/files:one/.test(details(e)),
    );
    // a dangling symlink in the parents does not resolve either
    await assert.rejects(
      exportFiles(vmm.client, { image: 'test/files:one', paths: ['/app/bin/tool/x'] }),
      (e) => code(e) === Status.NOT_FOUND,
    );
    const archive = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/nope', '/app/empty'], allowMissing: true });
    assert.deepEqual(listTar(archive).map((e) => e.name), ['app/empty/']);
    await assert.rejects(exportFiles(vmm.client, { image: 'test/none:one', paths: ['/app'] }), (e) => code(e) === Status.NOT_FOUND);
    await assert.rejects(
      exportFiles(vmm.client, { image: 'test/files:one', paths: ['app'] }),
      (e) => code(e) === Status.INVALID_ARGUMENT && /must be absolute/.test(details(e)),
    );
    assert.deepEqual(await scratchLeft(), []);
  });

  it('removes the scratch copy when the client cancels an export', async () => {
    const stream = vmm.client.exportImageFiles({ image: 'test/files:one', paths: ['/data'], allowMissing: false });
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.on('error', () => {});
    stream.cancel();
    for (let i = 0; i < 100 && (await scratchLeft()).length > 0; i++) await sleep(100);
    assert.deepEqual(await scratchLeft(), []);
  });

  it('makes an image from an exported archive: owners, modes, content and hard links read back with debugfs', async () => {
    const archive = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/app', '/lib/libx.so'] });
    const metadata = ImageMetadata.fromPartial({ cmd: ['/app/bin/tool'], env: ['A=1'] });
    const messages = archiveMessages({ image: 'test/scratch:one', kernelId: 'test-kernel' }, archive);
    messages[0] = { part: { $case: 'header', value: { ...(messages[0]!.part as { value: object }).value, metadata } } } as (typeof messages)[0];
    const { image } = await uploadArchive(vmm.client, messages);
    assert.equal(image?.name, 'test/scratch');
    assert.deepEqual(image?.metadata?.cmd, ['/app/bin/tool']);
    assert.equal(image?.kernelId, 'test-kernel');
    const rootfs = rootfsOf('test/scratch', 'one');
    assert.equal(image?.digest, referenceDigest(rootfs));
    assert.equal(image?.sizeBytes, String((await stat(rootfs)).size));
    const tool = debugfs(rootfs, 'stat /app/bin/tool').toString();
    assert.match(tool, /Mode:\s+04755/);
    assert.match(tool, /User:\s+1000\s+Group:\s+1001/);
    assert.match(tool, /Links: 2/, 'app/hard is the same inode');
    assert.match(debugfs(rootfs, 'stat /app/secret').toString(), /Mode:\s+0700[\s\S]*User:\s+1234\s+Group:\s+5678/);
    assert.match(debugfs(rootfs, 'stat /app/link-abs').toString(), /Fast link dest: "\/data"/);
    assert.equal(debugfs(rootfs, 'cat /lib/libx.so').toString(), 'library\n');
    assert.equal(debugfs(rootfs, 'cat /app/bin/tool').toString(), '#!/bin/sh\necho tool\n');
    // at least the default 64 MiB left free
    const free = /Free blocks:\s+(\d+)[\s\S]*Block size:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', rootfs], { stdio: ['ignore', 'pipe', 'ignore'] }).toString());
    assert.ok(Number(free![1]) * Number(free![2]) >= 64 * 1024 * 1024);
    const got = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'test/scratch:one' });
    assert.equal(got.image?.digest, image?.digest);
    await assert.rejects(uploadArchive(vmm.client, messages), (e) => code(e) === Status.ALREADY_EXISTS && /overwrite/.test(details(e)));
    assert.deepEqual(await scratchLeft(), []);
  });

  it('refuses bad uploads with INVALID_ARGUMENT and leaves no image, staging or scratch behind', async () => {
    const good = Buffer.concat([ustarEntry('etc/', '', '5', 0o755), ustarEntry('etc/motd', 'hi\n'), END_OF_ARCHIVE]);
    const header = archiveMessages({ image: 'test/bad:one' }, Buffer.alloc(0))[0]!;
    const chunk = (data: Buffer) => ({ part: { $case: 'chunk' as const, value: data } });
    const cases: [string, Parameters<typeof uploadArchive>[1], RegExp][] = [
      ['no header', [chunk(good)], /first message must be the header/],
      ['two headers', [header, header, chunk(good)], /only chunks may follow the header: send the header \(image, metadata\), then the archive chunks/],
      ['an entry climbing out', [header, chunk(Buffer.concat([ustarEntry('../evil', 'x'), END_OF_ARCHIVE]))], /"\.\.\/evil" climbs out/],
      ['an entry climbing out inside', [header, chunk(Buffer.concat([ustarEntry('etc/../../evil', 'x'), END_OF_ARCHIVE]))], /climbs out/],
      [
        'an entry through a symlink pointing out',
        [header, chunk(Buffer.concat([ustarEntry('out', '/tmp', '2'), ustarEntry('out/kindling-escaped', 'x'), END_OF_ARCHIVE]))],
        /could not be extracted: .*out\/kindling-escaped/,
      ],
      ['an archive cut short', [header, chunk(good.subarray(0, 1024))], /end-of-archive/],
      ['no archive at all', [header], /end-of-archive/],
      ['not a tar', [header, chunk(Buffer.alloc(2048, 7))], /not a tar header/],
    ];
    for (const [what, messages, message] of cases) {
      await assert.rejects(
        uploadArchive(vmm.client, messages),
        (e) => code(e) === Status.INVALID_ARGUMENT && message.test(details(e)),
        what,
      );
    }
    await assert.rejects(call(vmm.client, 'getImage', { image: 'test/bad:one' }), (e) => code(e) === Status.NOT_FOUND);
    assert.deepEqual(await scratchLeft(), []);
    assert.deepEqual(await storeLeftovers(), []);
    await assert.rejects(readFile('/evil'), { code: 'ENOENT' });
    await assert.rejects(readFile('/tmp/kindling-escaped'), { code: 'ENOENT' });
    // a good one of the same name then goes through
    const { image } = await uploadArchive(vmm.client, [header, chunk(good)]);
    assert.equal(debugfs(rootfsOf('test/bad', 'one'), 'cat /etc/motd').toString(), 'hi\n');
    assert.equal(image?.name, 'test/bad');
  });

  it('leaves nothing behind when the client cancels an upload', async () => {
    const archive = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/data/big'] });
    const messages = archiveMessages({ image: 'test/cancelled:one' }, archive);
    await assert.rejects(uploadArchive(vmm.client, messages, { cancelAfter: 200 }), (e) => code(e) === Status.CANCELLED);
    for (let i = 0; i < 100 && ((await scratchLeft()).length > 0 || (await storeLeftovers()).length > 0); i++) await sleep(100);
    assert.deepEqual(await scratchLeft(), []);
    assert.deepEqual(await storeLeftovers(), []);
    await assert.rejects(call(vmm.client, 'getImage', { image: 'test/cancelled:one' }), (e) => code(e) === Status.NOT_FOUND);
  });

  it('tags an image by hard link (same digest, metadata replaced or kept); deleting either name keeps the other', async () => {
    const source = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'test/files:one' });
    const metadata = ImageMetadata.fromPartial({ cmd: ['/tagged'] });
    const tagged = await call<object, TagImageResponse>(vmm.client, 'tagImage', { source: 'test/files:one', image: 'test/tagged:one', metadata, overwrite: false });
    assert.equal(tagged.image?.digest, source.image?.digest);
    assert.deepEqual(tagged.image?.metadata?.cmd, ['/tagged']);
    assert.equal(tagged.image?.kernelId, 'test-kernel');
    assert.equal((await stat(rootfsOf('test/tagged', 'one'))).ino, (await stat(rootfsOf('test/files', 'one'))).ino, 'one rootfs, two names');
    const kept = await call<object, TagImageResponse>(vmm.client, 'tagImage', { source: 'test/tagged:one', image: 'test/tagged:two', overwrite: false });
    assert.deepEqual(kept.image?.metadata?.cmd, ['/tagged'], 'no metadata keeps the source');
    await assert.rejects(
      call(vmm.client, 'tagImage', { source: 'test/files:one', image: 'test/tagged:one', overwrite: false }),
      (e) => code(e) === Status.ALREADY_EXISTS,
    );
    const replaced = await call<object, TagImageResponse>(vmm.client, 'tagImage', { source: 'test/files:one', image: 'test/tagged:one', overwrite: true });
    assert.deepEqual(replaced.image?.metadata?.cmd, source.image?.metadata?.cmd ?? []);
    await assert.rejects(
      call(vmm.client, 'tagImage', { source: 'test/none:one', image: 'test/x:one', overwrite: false }),
      (e) => code(e) === Status.NOT_FOUND && /test\/none:one/.test(details(e)),
    );
    await assert.rejects(
      call(vmm.client, 'tagImage', { source: 'test/files:one', image: 'Bad Name', overwrite: false }),
      (e) => code(e) === Status.INVALID_ARGUMENT,
    );
    // the copy of a name survives deleting the other, both ways
    await call(vmm.client, 'tagImage', { source: 'test/files:one', image: 'test/copy:one', overwrite: false });
    await call(vmm.client, 'deleteImage', { image: 'test/tagged:one' });
    const files = await exportFiles(vmm.client, { image: 'test/files:one', paths: ['/data/inner.txt'] });
    assert.equal(listTar(files).length, 1);
    await call(vmm.client, 'deleteImage', { image: 'test/copy:one' });
    const stillThere = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'test/files:one' });
    assert.equal(referenceDigest(rootfsOf('test/files', 'one')), stillThere.image?.digest);
    const before = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'test/tagged:two' });
    await call(vmm.client, 'tagImage', { source: 'test/tagged:two', image: 'test/solo:one', overwrite: false });
    await call(vmm.client, 'deleteImage', { image: 'test/tagged:two' });
    const solo = await exportFiles(vmm.client, { image: 'test/solo:one', paths: ['/lib/libx.so'] });
    assert.equal(listTar(solo)[0]?.name, 'lib/libx.so');
    assert.equal(referenceDigest(rootfsOf('test/solo', 'one')), before.image?.digest);
    await call(vmm.client, 'deleteImage', { image: 'test/solo:one' });
  });

  it('hides kindling-cache/ and kindling-intermediate/ images unless include_internal or named', async () => {
    await call(vmm.client, 'tagImage', { source: 'test/files:one', image: 'kindling-cache/ab12cd:step-3', overwrite: false });
    await call(vmm.client, 'tagImage', { source: 'test/files:one', image: 'kindling-intermediate/build-1/builder:latest', overwrite: false });
    const names = (response: ListImagesResponse) => response.images.map((i) => `${i.name}:${i.tag}`);
    const visible = names(await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '', includeInternal: false }));
    assert.ok(visible.includes('test/files:one'));
    assert.ok(!visible.some((n) => n.startsWith('kindling-')), `hidden: ${visible.join(', ')}`);
    const all = names(await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '', includeInternal: true }));
    assert.ok(all.includes('kindling-cache/ab12cd:step-3') && all.includes('kindling-intermediate/build-1/builder:latest'));
    const named = names(await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: 'kindling-cache/ab12cd', includeInternal: false }));
    assert.deepEqual(named, ['kindling-cache/ab12cd:step-3']);
    const got = await call<object, GetImageResponse>(vmm.client, 'getImage', { image: 'kindling-cache/ab12cd:step-3' });
    assert.equal(got.image?.name, 'kindling-cache/ab12cd');
    assert.ok((await stat(rootfsOf('kindling-cache/ab12cd', 'step-3'))).isFile(), 'stored under images/kindling-cache/ab12cd/step-3/');
    await call(vmm.client, 'deleteImage', { image: 'kindling-cache/ab12cd:step-3' });
    await call(vmm.client, 'deleteImage', { image: 'kindling-intermediate/build-1/builder:latest' });
    const after = names(await call<object, ListImagesResponse>(vmm.client, 'listImages', { name: '', includeInternal: true }));
    assert.ok(!after.some((n) => n.startsWith('kindling-')));
    assert.deepEqual((await readdir(join(stateDir(), 'images'))).filter((n) => n.startsWith('kindling-')), [], 'empty parents pruned');
  });

  it('refuses to create a VM from an image without /sbin/init, before any VM directory or netns exists', async () => {
    const netns = () => execFileSync('ip', ['netns', 'list']).toString().split('\n').filter((l) => l.startsWith('kindling-test-'));
    const netnsBefore = netns();
    await assert.rejects(
      call(vmm.client, 'createVm', {
        vmId: 'no-init',
        start: false,
        spec: { image: 'test/scratch:one', kernelId: '', vcpus: 1, memoryMib: 128, diskSizeBytes: '0', network: '', authorizedKeys: [], hostname: '', extraKernelArgs: '', labels: {}, buildId: '', transferDiskBytes: '0' },
      }),
      (e) => code(e) === Status.FAILED_PRECONDITION && /test\/scratch:one/.test(details(e)) && /\/sbin\/init/.test(details(e)),
    );
    assert.deepEqual(await readdir(join(stateDir(), 'vms')).catch(() => []), []);
    assert.deepEqual(netns(), netnsBefore);
  });
});
