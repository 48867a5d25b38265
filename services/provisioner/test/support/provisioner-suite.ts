// The provisioner's gRPC server against a test sshd and a real fetcher serving a local
// context directory, with generated clients for both. For gRPC-level tests and the bench.
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { FetcherServiceClient, type ListFilesResponse, type ResolveContextResponse } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import {
  ProvisionerServiceClient,
  type CloseSessionRequest,
  type CloseSessionResponse,
  type PutFilesRequest,
  type PutFilesResponse,
  type SshTarget,
  type WaitReadyRequest,
  type WaitReadyResponse,
} from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { loadFetcherConfig, startFetcherService } from '@kindling/fetcher';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadProvisionerConfig, startProvisionerService } from '../../src/index.ts';
import { startServiceProcess } from './service-process.ts';
import { startTestSshd, type TestSshd } from './test-sshd.ts';

export interface ProvisionerSuite {
  sshd: TestSshd;
  provisioner: ProvisionerServiceClient;
  fetcher: FetcherServiceClient;
  target: SshTarget;
  /** A local directory the fetcher may serve as a context (it holds a Dockerfile). */
  contextDir: string;
  /** The fetcher's blob cache (blobs at sha256/<hex>). */
  fetcherCacheDir: string;
  /** Process ids of the fetcher and the provisioner when they run as separate processes. */
  pids?: { fetcher: number; provisioner: number };
  resolveContext(): Promise<ResolveContextResponse>;
  waitReady(request: WaitReadyRequest): Promise<WaitReadyResponse>;
  putFiles(request: PutFilesRequest): Promise<PutFilesResponse>;
  closeSession(request: CloseSessionRequest): Promise<CloseSessionResponse>;
  listFiles(contextId: string, patterns: string[], options?: { parents?: boolean }): Promise<ListFilesResponse>;
  stop(): Promise<void>;
}

export function unaryCall<Req, Res>(client: object, method: (req: Req, cb: (error: ServiceError | null, res: Res) => void) => unknown, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => method.call(client, request, (error, response) => (error ? reject(error) : resolve(response))));
}

/** The proto SshTarget for a test sshd, pinned to its host key unless overridden. */
export function sshTargetOf(sshd: TestSshd, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    host: sshd.host,
    port: sshd.port,
    user: 'root',
    privateKey: sshd.clientPrivateKey,
    agentSocket: '',
    hostKey: sshd.hostPublicKey,
    insecureIgnoreHostKey: false,
    sessionId: `suite-${sshd.port}`,
    ...overrides,
  };
}

export interface ProvisionerSuiteOptions {
  logLevel?: string;
  /** Run the fetcher and the provisioner as separate processes, as deployed (default: in this process). */
  separateProcesses?: boolean;
  /** Extra node flags for the provisioner's process (e.g. --cpu-prof) when separate. */
  provisionerNodeArgs?: string[];
  /** Tell the provisioner the fetcher's cache directory (--fetcher-cache-dir), so PutFiles reads blobs there (default: ReadBlob only). */
  localBlobs?: boolean;
}

export async function startProvisionerSuite(options: ProvisionerSuiteOptions = {}): Promise<ProvisionerSuite> {
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  try {
    const work = await mkdtemp(join(tmpdir(), 'kindling-test-provisioner-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const logger = pino({ level: options.logLevel ?? 'silent' });
    const sshd = await startTestSshd();
    cleanups.push(() => sshd.stop());
    const contextDir = join(work, 'context');
    const fetcherCacheDir = join(work, 'fetcher-cache');
    const localBlobs = options.localBlobs ? [`--fetcher-cache-dir=${fetcherCacheDir}`] : [];
    let fetcherAddress: string;
    let provisionerAddress: string;
    let pids: ProvisionerSuite['pids'];
    if (options.separateProcesses) {
      const fetcherProcess = await startServiceProcess(fileURLToPath(new URL('../../../fetcher/src/main.ts', import.meta.url)), [`--cache-dir=${fetcherCacheDir}`]);
      cleanups.push(() => fetcherProcess.stop());
      const provisionerProcess = await startServiceProcess(fileURLToPath(new URL('../../src/main.ts', import.meta.url)), [`--fetcher-address=${fetcherProcess.address}`, ...localBlobs], undefined, options.provisionerNodeArgs);
      cleanups.push(() => provisionerProcess.stop());
      fetcherAddress = fetcherProcess.address;
      provisionerAddress = provisionerProcess.address;
      pids = { fetcher: fetcherProcess.pid, provisioner: provisionerProcess.pid };
    } else {
      const fetcherConfig = loadFetcherConfig(['--port=0', `--cache-dir=${fetcherCacheDir}`], {});
      const fetcherServer = await startFetcherService(fetcherConfig, { logger });
      cleanups.push(() => fetcherServer.shutdown(100));
      fetcherServer.health.setServing(true);
      const provisionerConfig = loadProvisionerConfig(['--port=0', `--fetcher-address=127.0.0.1:${fetcherServer.port}`, ...localBlobs], {});
      const provisionerServer = await startProvisionerService(provisionerConfig, { logger });
      cleanups.push(() => provisionerServer.shutdown(100));
      provisionerServer.health.setServing(true);
      fetcherAddress = `127.0.0.1:${fetcherServer.port}`;
      provisionerAddress = `127.0.0.1:${provisionerServer.port}`;
    }
    const fetcher = new FetcherServiceClient(fetcherAddress, credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20 });
    const provisioner = new ProvisionerServiceClient(provisionerAddress, credentials.createInsecure());
    cleanups.push(async () => {
      fetcher.close();
      provisioner.close();
    });
    const target = sshTargetOf(sshd);
    return {
      sshd,
      provisioner,
      fetcher,
      target,
      contextDir,
      fetcherCacheDir,
      ...(pids ? { pids } : {}),
      resolveContext: () =>
        unaryCall(fetcher, fetcher.resolveContext, { source: { $case: 'local', value: { path: contextDir } }, dockerfilePath: '' }),
      waitReady: (request) => unaryCall<WaitReadyRequest, WaitReadyResponse>(provisioner, provisioner.waitReady, request),
      putFiles: (request) => unaryCall<PutFilesRequest, PutFilesResponse>(provisioner, provisioner.putFiles, request),
      closeSession: (request) => unaryCall<CloseSessionRequest, CloseSessionResponse>(provisioner, provisioner.closeSession, request),
      listFiles: (contextId, patterns, options = {}) =>
        unaryCall(fetcher, fetcher.listFiles, { contextId, patterns, excludes: [], parents: options.parents ?? false }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
