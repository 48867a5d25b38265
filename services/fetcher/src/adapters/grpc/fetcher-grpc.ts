import {
  ContextKind,
  type FetcherServiceServer,
  type FileEntry,
  FileType,
  type ResolveContextRequest,
  type UploadContextRequest,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { clientStream, serverStream, unary } from '@kindling/runtime';
import type { ContextKind as DomainKind, ContextSource } from '../../domain/build-context.ts';
import type { BuildContextService } from '../../domain/build-context-service.ts';
import type { SelectedEntry } from '../../domain/context-index.ts';
import { InvalidArgumentError } from '../../domain/errors.ts';
import { recycle } from '../fs/headroom.ts';
import { messageParts, type ReadBlobMessage } from './read-blob-codec.ts';

const KIND: Record<DomainKind, ContextKind> = {
  local: ContextKind.CONTEXT_KIND_LOCAL,
  http: ContextKind.CONTEXT_KIND_HTTP,
  git: ContextKind.CONTEXT_KIND_GIT,
  tarball: ContextKind.CONTEXT_KIND_TARBALL,
};

const TYPE = {
  file: FileType.FILE_TYPE_REGULAR,
  dir: FileType.FILE_TYPE_DIRECTORY,
  symlink: FileType.FILE_TYPE_SYMLINK,
};

const EMPTY = Buffer.alloc(0);
const MESSAGES_IN_FLIGHT = 4;

/** The gRPC face of the fetcher: validates and converts, then calls the use cases. */
export function fetcherGrpcImplementation(service: BuildContextService): FetcherServiceServer {
  return {
    resolveContext: unary(async (req: ResolveContextRequest, ctx) => {
      const resolved = await service.resolve(toContextRequest(req), ctx.signal);
      ctx.log.info(
        { contextId: resolved.id, kind: resolved.kind, root: resolved.displayRoot },
        'context resolved',
      );
      return {
        contextId: resolved.id,
        kind: KIND[resolved.kind],
        displayRoot: resolved.displayRoot,
        dockerfile: resolved.dockerfile,
        dockerfilePath: resolved.dockerfilePath,
        dockerignore: resolved.dockerignore,
        dockerignorePath: resolved.dockerignorePath,
        gitCommit: resolved.gitCommit ?? '',
      };
    }),

    uploadContext: clientStream(async (requests: AsyncIterable<UploadContextRequest>, ctx) => {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.part?.$case !== 'header') {
        throw new InvalidArgumentError(
          'UploadContext must start with a header message naming the archive file',
        );
      }
      const header = first.value.part.value;
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          if (next.value.part?.$case !== 'chunk')
            throw new InvalidArgumentError(
              'UploadContext sent a second header; only chunks may follow the first',
            );
          yield next.value.part.value;
        }
      }
      const announced = Number(header.size);
      const uploaded = await service.upload(header.fileName, chunks(), ctx.signal, announced > 0 ? announced : undefined);
      return { uploadId: uploaded.uploadId, digest: uploaded.digest, size: String(uploaded.size) };
    }),

    listFiles: unary(async (req, ctx) => {
      const result = await service.listFiles(req.contextId, req.patterns, req.excludes, ctx.signal, {
        parents: req.parents,
      });
      return {
        sources: result.sources.map((s) => ({ pattern: s.pattern, files: s.files.map(toFileEntry) })),
        totalSize: String(result.totalSize),
      };
    }),

    fetchUrl: unary(async (req, ctx) => {
      const file = await service.fetchUrl(req.url, req.expectedDigest, ctx.signal);
      return { file: toFileEntry(file) };
    }),

    readBlob: serverStream(async (req, ctx, send) => {
      let offset = Number(req.offset);
      const byPath = req.contextId !== '' || req.path !== '';
      if (byPath && req.digest !== '')
        throw new InvalidArgumentError('ReadBlob takes either a digest or a context_id and path, not both');
      if (req.copyTo !== '') {
        if (byPath || offset !== 0) throw new InvalidArgumentError('copy_to takes a digest and the whole blob (no context_id/path, no offset)');
        const handed = await service.copyBlobTo(req.digest, req.copyTo, req.link);
        await send({ data: EMPTY, offset: '0', totalSize: String(handed.size), digest: handed.digest, linked: handed.linked });
        return;
      }
      const blob = byPath
        ? await service.readContextFile(req.contextId, req.path, offset, ctx.signal)
        : await service.readBlob(req.digest, offset, ctx.signal).then((b) => ({ ...b, totalSize: b.size }));
      const totalSize = String(blob.totalSize ?? 0);
      // A few messages may wait in the transport at once, so reading the next one overlaps sending.
      // Each counts until the transport has taken it (flushed), not merely until grpc-js queued it:
      // grpc-js queues 16 before it pushes back, and 1 MiB buffers held that long are promoted to
      // V8's old space, costing a major GC every few dozen MiB sent.
      // Once a message is flushed nothing reads its parts again: file-read buffers go back to their pool.
      const inFlight: { sent: Promise<void>; parts: Buffer[] }[] = [];
      const settle = async (message: { sent: Promise<void>; parts: Buffer[] }) => {
        await message.sent;
        for (const p of message.parts) recycle(p);
      };
      for await (const parts of messageParts(blob.chunks)) {
        const message: ReadBlobMessage = {
          data: EMPTY,
          parts,
          offset: String(offset),
          totalSize,
          digest: '',
          linked: false,
        };
        const sent = send(message, { flushed: true });
        sent.catch(() => {}); // observed below; this only keeps an early failure from counting as unhandled
        inFlight.push({ sent, parts });
        for (const p of parts) offset += p.length;
        if (inFlight.length >= MESSAGES_IN_FLIGHT) await settle(inFlight.shift()!);
      }
      for (const message of inFlight) await settle(message);
      if (byPath) {
        const digest = await (blob as { digest: Promise<string> }).digest;
        await send({ data: Buffer.alloc(0), offset: String(offset), totalSize: String(offset), digest, linked: false });
      }
    }),
  };
}

function toContextRequest(req: ResolveContextRequest): ContextSource {
  const dockerfilePath = req.dockerfilePath;
  switch (req.source?.$case) {
    case 'local':
      return { kind: 'local', path: req.source.value.path, dockerfilePath };
    case 'http':
      return { kind: 'http', dockerfileUrl: req.source.value.dockerfileUrl };
    case 'git':
      return { kind: 'git', url: req.source.value.url, dockerfilePath };
    case 'tarball': {
      const src = req.source.value.source;
      if (src?.$case === 'url') return { kind: 'tarball', url: src.value, dockerfilePath };
      if (src?.$case === 'uploadId') return { kind: 'tarball', uploadId: src.value, dockerfilePath };
      throw new InvalidArgumentError('tarball context needs a url or an upload_id');
    }
    default:
      throw new InvalidArgumentError('ResolveContext needs a source: local, http, git or tarball');
  }
}

function toFileEntry(e: SelectedEntry): FileEntry {
  return {
    path: e.path,
    type: TYPE[e.type],
    size: String(e.size),
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    digest: e.digest ?? '',
    linkTarget: e.linkTarget ?? '',
    mtime: e.mtimeMs > 0 ? new Date(e.mtimeMs) : undefined,
    matchRoot: e.matchRoot,
  };
}
