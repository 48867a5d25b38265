// The debugging escape hatch: a target may skip host key verification only when the provisioner
// was started with --insecure-accept-any-host-key, and every call that uses it is logged as a warning.
import assert from 'node:assert/strict';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { ProvisionerServiceClient, type SshTarget, type WaitReadyResponse } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadProvisionerConfig, startProvisionerService } from '../src/index.ts';
import { sshTargetOf, unaryCall } from './support/provisioner-suite.ts';
import { startTestSshd, sshdUnavailableReason } from './support/test-sshd.ts';

const skip = await sshdUnavailableReason();

test('insecure_ignore_host_key works only with --insecure-accept-any-host-key, with a warning on every call', { skip }, async (t) => {
  const sshd = await startTestSshd();
  t.after(() => sshd.stop());
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = pino({ level: 'warn' }, sink);
  // the fetcher is never called here; its client connects lazily
  const config = loadProvisionerConfig(['--port=0', '--fetcher-address=127.0.0.1:1', '--insecure-accept-any-host-key'], {});
  const server = await startProvisionerService(config, { logger });
  t.after(() => server.shutdown(100));
  server.health.setServing(true);
  const client = new ProvisionerServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure());
  t.after(() => client.close());
  const target = sshTargetOf(sshd, { hostKey: '', insecureIgnoreHostKey: true, sessionId: 'insecure' });
  const warnings = (): number => lines.filter((line) => line.includes('host key verification is disabled for this target')).length;

  const ready = await unaryCall<{ target: SshTarget }, WaitReadyResponse>(client, client.waitReady, { target });
  assert.equal(ready.attempts, 1);
  assert.equal(warnings(), 1, 'WaitReady warns');
  await new Promise<void>((resolve, reject) => {
    const call = client.exec({ target, command: { $case: 'shell', value: { script: 'true', shell: [] } }, env: [], user: '', workingDir: '', buildId: '', stepIndex: 0, reuseShell: false });
    call.on('data', () => {});
    call.on('error', (error: ServiceError) => reject(error));
    call.on('end', () => resolve());
  });
  assert.equal(warnings(), 2, 'Exec warns');
  assert.ok(lines.some((line) => line.includes('--insecure-accept-any-host-key')), 'the start itself is logged');
});
