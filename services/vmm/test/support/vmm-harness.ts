/**
 * A real vmm for tests: the gRPC service on 127.0.0.1:0 over a temp state dir, CNI plugins run in a
 * test-owned host netns (CniLab), per-VM netns named kindling-test-*, events on an in-process bus.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { VmmServiceClient } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createLogger, InProcessEventBus } from '@kindling/runtime';
import ssh2, { type Client as SshClient } from 'ssh2';
import { loadVmmConfig } from '../../src/config.ts';
import { startVmmService, type RunningVmm } from '../../src/server.ts';

export interface VmmUnderTest {
  readonly running: RunningVmm;
  readonly client: VmmServiceClient;
  readonly bus: InProcessEventBus;
  stop(): Promise<void>;
}

export interface VmmTestSettings {
  readonly stateDir: string;
  readonly cacheDir?: string;
  readonly cniConfDir: string;
  readonly cniCacheDir: string;
  readonly cniHostNetns?: string;
  readonly registerBaseOs?: boolean;
  readonly stopTimeout?: string;
  readonly fetcherCacheDir?: string;
}

export async function startTestVmm(settings: VmmTestSettings): Promise<VmmUnderTest> {
  // Without a test-owned host netns a CNI plugin would run in the machine's own namespace (and, say,
  // make a bridge there): such a vmm gets an empty plugin directory, so no plugin can run at all.
  const cniBinPath = settings.cniHostNetns ? '/usr/lib/cni' : join(settings.stateDir, 'no-cni-plugins');
  if (!settings.cniHostNetns) await mkdir(cniBinPath, { recursive: true });
  const argv = [
    '--port=0',
    `--state-dir=${settings.stateDir}`,
    `--cache-dir=${settings.cacheDir ?? join(settings.stateDir, 'no-cache')}`,
    `--register-base-os=${settings.registerBaseOs ?? false}`,
    `--cni-conf-dir=${settings.cniConfDir}`,
    `--cni-cache-dir=${settings.cniCacheDir}`,
    `--cni-bin-path=${cniBinPath}`,
    '--netns-prefix=kindling-test-',
    '--host-name=testhost',
    '--accel=auto',
    `--stop-timeout=${settings.stopTimeout ?? '60s'}`,
    ...(settings.cniHostNetns ? [`--cni-host-netns=${settings.cniHostNetns}`] : []),
    ...(settings.fetcherCacheDir ? [`--fetcher-cache-dir=${settings.fetcherCacheDir}`] : []),
  ];
  const config = loadVmmConfig(argv, {});
  const bus = new InProcessEventBus();
  const running = await startVmmService(config, { logger: createLogger('vmm-test', 'warn'), bus });
  const client = new VmmServiceClient(running.address, credentials.createInsecure());
  return {
    running,
    client,
    bus,
    async stop() {
      client.close();
      await running.shutdown(1000);
    },
  };
}

/** Promisified unary call: `await call(client, 'createVm', request)`. */
export function call<Req, Res>(
  client: VmmServiceClient,
  method: string,
  request: Req,
  timeoutMs = 120_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (...args: unknown[]) => unknown>)[method]!;
    fn.call(
      client,
      request,
      { deadline: new Date(Date.now() + timeoutMs) },
      (error: ServiceError | null, response: Res) => (error ? reject(error) : resolve(response)),
    );
  });
}

/** Why a test that needs root and these host tools cannot run here, or false when it can. */
export function needsRootAnd(tools: string[]): string | false {
  const missing = tools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) return `needs ${missing.join(', ')}`;
  return process.getuid?.() !== 0 ? 'needs root' : false;
}

export const makeTempDir = (label: string) => mkdtemp(join(tmpdir(), `kindling-test-${label}-`));
export const removeDir = (dir: string) => rm(dir, { recursive: true, force: true });

/**
 * A TCP forwarder inside the test's host netns, listening on a Unix socket (filesystem sockets cross
 * network namespaces), so ssh2 in this process reaches a guest on the test bridge and nothing else.
 */
export class NetnsForwarder {
  private constructor(
    private readonly child: ChildProcess,
    readonly socketPath: string,
  ) {}

  static async start(
    hostNetns: string,
    socketPath: string,
    target: { host: string; port: number },
  ): Promise<NetnsForwarder> {
    const script = `
      const net = require('node:net');
      const [path, host, port] = process.argv.slice(1);
      net.createServer((inbound) => {
        const outbound = net.connect(Number(port), host);
        inbound.pipe(outbound).pipe(inbound);
        const close = () => { inbound.destroy(); outbound.destroy(); };
        inbound.on('error', close); outbound.on('error', close);
      }).listen(path, () => process.stdout.write('ready\\n'));`;
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        hostNetns,
        process.execPath,
        '-e',
        script,
        socketPath,
        target.host,
        String(target.port),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`forwarder exited with ${code}`)));
    });
    return new NetnsForwarder(child, socketPath);
  }

  connect(): Socket {
    return createConnection(this.socketPath);
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await rm(this.socketPath, { force: true });
  }
}

/** Opens an SSH session as root, accepting only the host key the vmm returned (pinned). */
export async function sshConnect(
  forwarder: NetnsForwarder,
  privateKey: string,
  hostPublicKey: string,
  readyWithinMs: number,
): Promise<SshClient> {
  const expected = Buffer.from(hostPublicKey.split(/\s+/)[1] ?? '', 'base64');
  const deadline = Date.now() + readyWithinMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new ssh2.Client();
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        // ssh2 may emit more than one error for a dying connection: keep a listener for all of them.
        client.on('error', reject);
        client.connect({
          sock: forwarder.connect(),
          username: 'root',
          privateKey,
          readyTimeout: 15_000,
          hostVerifier: (key: Buffer) => key.equals(expected),
        });
      });
      return client;
    } catch (error) {
      lastError = error;
      client.end();
      if (/host key|verification/i.test((error as Error).message)) throw error;
      await sleep(2000);
    }
  }
  throw new Error(`guest SSH not ready within ${readyWithinMs} ms: ${(lastError as Error)?.message}`);
}

export function sshExec(
  client: SshClient,
  command: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, stream) => {
      if (error) return reject(error);
      let stdout = '';
      let stderr = '';
      stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      stream.on('close', (code: number) => resolve({ code, stdout, stderr }));
    });
  });
}
