// Decompresses on the provisioner's host, so guests need only tar: gzip with node's zlib,
// bzip2 and xz with the host's `bzip2`/`xz` (Debian: bzip2, xz-utils).
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ArchiveDecoder } from '../../ports/archive-decoder.ts';
import type { CompressionFormat } from '../../domain/archive-format.ts';
import { FailedPreconditionError } from '../../domain/errors.ts';

const TOOLS = { bzip2: 'bzip2', xz: 'xz' } as const;

export class HostArchiveDecoder implements ArchiveDecoder {
  async *decompress(format: Exclude<CompressionFormat, 'none'>, data: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    if (format === 'gzip') {
      const gunzip = createGunzip();
      const feeding = pipeline(Readable.from(data), gunzip).catch((error: Error) => gunzip.destroy(error));
      yield* gunzip as AsyncIterable<Buffer>;
      await feeding;
      return;
    }
    const tool = TOOLS[format];
    const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', (error) => reject(new FailedPreconditionError(`cannot run ${tool} to decompress an ADD archive: ${error.message}; install it on the provisioner host`, { cause: error })));
      child.once('close', (code) => resolve(code));
    });
    exited.catch(() => {});
    const feeding = pipeline(Readable.from(data), child.stdin).catch(() => {});
    try {
      yield* child.stdout as AsyncIterable<Buffer>;
      await feeding;
      const code = await exited;
      if (code !== 0) {
        throw new FailedPreconditionError(`${tool} could not decompress the ADD archive (exit ${code}): ${Buffer.concat(stderr).toString().trim()}`);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}
