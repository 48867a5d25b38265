/**
 * Tar helpers for tests: a tar's entries as GNU tar lists them (numeric owners), a minimal ustar
 * writer for archives GNU tar would never make (names climbing out with ".."), and one-shot gRPC
 * stream calls for ExportImageFiles and CreateImageFromArchive.
 */
import { execFileSync } from 'node:child_process';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type {
  CreateImageFromArchiveRequest,
  CreateImageFromArchiveResponse,
  ExportImageFilesResponse,
  VmmServiceClient,
} from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';

export interface ListedEntry {
  readonly mode: string;
  readonly owner: string;
  readonly size: number;
  readonly name: string;
  /** "-> target" of a symlink, "link to target" of a hard link */
  readonly link: string;
}

/** `tar -tv --numeric-owner` of an archive, one entry per line. */
export function listTar(archive: Buffer): ListedEntry[] {
  const text = execFileSync('tar', ['-tv', '--numeric-owner', '--quoting-style=literal', '-f', '-'], { input: archive, maxBuffer: 1 << 28 }).toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const match = /^(\S+) (\d+\/\d+)\s+(\d+) \S+ \S+ (.*)$/.exec(line);
      if (!match) throw new Error(`unexpected tar listing line: ${line}`);
      const [, mode, owner, size, rest] = match as unknown as [string, string, string, string, string];
      const arrow = / -> | link to /.exec(rest);
      return {
        mode,
        owner,
        size: Number(size),
        name: arrow ? rest.slice(0, arrow.index) : rest,
        link: arrow ? rest.slice(arrow.index + 1) : '',
      };
    });
}

/** One ustar header block (plus data) of a regular file, directory or symlink (content is its target). */
export function ustarEntry(name: string, content = '', type: '0' | '2' | '5' = '0', mode = 0o644): Buffer {
  if (type === '2') return ustarHeader(name, '', type, 0o777, content);
  return ustarHeader(name, content, type, mode, '');
}

function ustarHeader(name: string, content: string, type: string, mode: number, linkName: string): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'latin1');
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0');
  field(0, 100, name);
  field(100, 8, octal(mode, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(Buffer.byteLength(content), 12));
  field(136, 12, octal(1_700_000_000, 12));
  field(148, 8, '        ');
  field(156, 1, type);
  field(157, 100, linkName);
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${octal(sum, 7)}\0`);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(content) / 512) * 512);
  data.write(content, 'utf8');
  return Buffer.concat([header, data]);
}

export const END_OF_ARCHIVE = Buffer.alloc(1024);

/** ExportImageFiles to completion: the whole tar. */
export function exportFiles(
  client: VmmServiceClient,
  request: { image: string; paths: string[]; allowMissing?: boolean },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stream = client.exportImageFiles({ allowMissing: false, ...request });
    stream.on('data', (message: ExportImageFilesResponse) => chunks.push(Buffer.from(message.chunk)));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** CreateImageFromArchive with these messages; `cancelAfter` cancels the call once that many are written. */
export function uploadArchive(
  client: VmmServiceClient,
  messages: CreateImageFromArchiveRequest[],
  options: { cancelAfter?: number } = {},
): Promise<CreateImageFromArchiveResponse> {
  return new Promise((resolve, reject) => {
    const call = client.createImageFromArchive(new Metadata(), (error: ServiceError | null, response?: CreateImageFromArchiveResponse) =>
      error ? reject(error) : resolve(response!),
    );
    void (async () => {
      for (const [index, message] of messages.entries()) {
        if (options.cancelAfter !== undefined && index === options.cancelAfter) {
          call.cancel();
          return;
        }
        if (!call.write(message)) await new Promise((drained) => call.once('drain', drained));
      }
      call.end();
    })();
  });
}

/** An archive as upload messages: the header, then chunks of at most 64 KiB. */
export function archiveMessages(
  header: { image: string; overwrite?: boolean; extraBytes?: string; kernelId?: string },
  archive: Buffer,
): CreateImageFromArchiveRequest[] {
  const messages: CreateImageFromArchiveRequest[] = [
    { part: { $case: 'header', value: { metadata: undefined, kernelId: '', overwrite: false, extraBytes: '0', ...header } } },
  ];
  for (let offset = 0; offset < archive.length; offset += 64 * 1024) {
    messages.push({ part: { $case: 'chunk', value: archive.subarray(offset, offset + 64 * 1024) } });
  }
  return messages;
}
