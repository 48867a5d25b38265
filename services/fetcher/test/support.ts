import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  FetcherServiceClient,
  type ListFilesResponse,
  type ReadBlobResponse,
  type ResolveContextRequest,
  type ResolveContextResponse,
} from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { Logger } from '@kindling/runtime';
import { pino } from 'pino';
import { loadFetcherConfig, startFetcherService } from '../src/index.ts';

export async function tempDir(t: TestContext, prefix = 'kindling-fetcher-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger that keeps every line, so tests can check what was (not) logged. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug', base: { service: 'fetcher' } },
    { write: (line: string) => void lines.push(line) },
  );
  return { logger, lines };
}

export interface TestFetcher {
  client: FetcherServiceClient;
  cacheDir: string;
  logLines: string[];
  resolve(req: Partial<ResolveContextRequest>): Promise<ResolveContextResponse>;
  listFiles(contextId: string, patterns: string[], excludes?: string[], parents?: boolean): Promise<ListFilesResponse>;
  readBlob(digest: string, offset?: number): Promise<Buffer>;
}

/** Starts a real fetcher on 127.0.0.1:0 with a fresh cache, and a client for it. */
export async function startTestFetcher(t: TestContext, flags: string[] = []): Promise<TestFetcher> {
  const cacheDir = await tempDir(t, 'kindling-fetcher-cache-');
  const config = loadFetcherConfig(['--port=0', `--cache-dir=${cacheDir}`, ...flags], {});
  const { logger, lines } = capturingLogger();
  const running = await startFetcherService(config, { logger });
  const client = new FetcherServiceClient(`127.0.0.1:${running.port}`, credentials.createInsecure());
  t.after(async () => {
    client.close();
    await running.shutdown(100);
  });
  const call = <Req, Res>(
    method: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown,
    req: Req,
  ) =>
    new Promise<Res>((resolve, reject) =>
      method.call(client, req, (err, res) => (err ? reject(err) : resolve(res))),
    );
  return {
    client,
    cacheDir,
    logLines: lines,
    resolve: (req) => call(client.resolveContext, { dockerfilePath: '', ...req } as ResolveContextRequest),
    listFiles: (contextId, patterns, excludes = [], parents = false) =>
      call(client.listFiles, { contextId, patterns, excludes, parents }),
    readBlob: (digest, offset = 0) =>
      new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        const stream = client.readBlob({ digest, offset: String(offset), contextId: '', path: '', copyTo: '', link: false });
        stream.on('data', (m: ReadBlobResponse) => parts.push(m.data));
        stream.on('error', reject);
        stream.on('end', () => resolve(Buffer.concat(parts)));
      }),
  };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A plain HTTP server on 127.0.0.1, counting requests per path. */
export async function startHttpServer(
  t: TestContext,
  handler: Handler,
): Promise<{ url: string; server: Server; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server, hits };
}

export function grpcCode(err: unknown): number | undefined {
  return (err as ServiceError).code;
}

const MiB = 1024 * 1024;

/** MiB block i of a generated payload: its own byte, with i in its first four bytes. */
function payloadBlock(i: number): Buffer {
  const b = Buffer.alloc(MiB, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

/** A payload of `mib` MiB generated block by block, so neither the server nor the test holds it whole. */
export function generatedPayload(mib: number): { size: number; digest: string; send(res: ServerResponse): void } {
  const hash = createHash('sha256');
  for (let i = 0; i < mib; i++) hash.update(payloadBlock(i));
  return {
    size: mib * MiB,
    digest: `sha256:${hash.digest('hex')}`,
    send(res) {
      res.writeHead(200, { 'content-length': String(mib * MiB) });
      let i = 0;
      const pump = (): void => {
        while (i < mib) if (!res.write(payloadBlock(i++))) return void res.once('drain', pump);
        res.end();
      };
      pump();
    },
  };
}
