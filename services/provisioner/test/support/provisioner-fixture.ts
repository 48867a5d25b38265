// A Provisioner wired to real adapters against a test sshd, for domain-level tests.
import { HostArchiveDecoder } from '../../src/adapters/archive/host-archive-decoder.ts';
import { SshConnectionPool } from '../../src/adapters/ssh/ssh-connection-pool.ts';
import { Provisioner } from '../../src/domain/provisioner.ts';
import type { SshTargetInput } from '../../src/domain/target.ts';
import type { ExecOutcome, ExecOutput, ExecStep } from '../../src/domain/exec-step.ts';
import type { BlobSource } from '../../src/ports/blob-source.ts';
import { startTestSshd, type TestSshd } from './test-sshd.ts';
import { NotFoundError } from '../../src/domain/errors.ts';

export interface ProvisionerFixture {
  sshd: TestSshd;
  provisioner: Provisioner;
  pool: SshConnectionPool;
  target: SshTargetInput;
  blobs: Map<string, Buffer>;
  run(step: Partial<ExecStep>, signal?: AbortSignal): Promise<{ outcome: ExecOutcome; stdout: string; stderr: string; chunks: ExecOutput[] }>;
  stop(): Promise<void>;
}

export function memoryBlobSource(blobs: Map<string, Buffer>): BlobSource {
  return {
    async *read(digest: string) {
      const blob = blobs.get(digest);
      if (!blob) throw new NotFoundError(`blob ${digest} not found`);
      for (let offset = 0; offset < blob.length; offset += 1 << 20) yield blob.subarray(offset, offset + (1 << 20));
    },
  };
}

export async function startProvisionerFixture(blobSource?: BlobSource): Promise<ProvisionerFixture> {
  const sshd = await startTestSshd();
  const pool = new SshConnectionPool();
  const blobs = new Map<string, Buffer>();
  const provisioner = new Provisioner(pool, blobSource ?? memoryBlobSource(blobs), new HostArchiveDecoder(), {
    allowAcceptAnyHostKey: false,
    defaultWaitReadyTimeoutMs: 10_000,
  });
  const target: SshTargetInput = {
    sessionId: `test-${sshd.port}`,
    host: sshd.host,
    port: sshd.port,
    user: 'root',
    privateKey: sshd.clientPrivateKey,
    hostKey: sshd.hostPublicKey,
  };
  return {
    sshd,
    provisioner,
    pool,
    target,
    blobs,
    async run(step, signal) {
      const chunks: ExecOutput[] = [];
      const outcome = await provisioner.exec(target, { env: [], ...step }, (chunk) => void chunks.push(chunk), signal);
      const text = (stream: string): string => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data)).toString('utf8');
      return { outcome, stdout: text('stdout'), stderr: text('stderr'), chunks };
    },
    async stop() {
      await provisioner.shutdown();
      await sshd.stop();
    },
  };
}
