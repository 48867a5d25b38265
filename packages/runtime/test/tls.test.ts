import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HealthCheckResponse_ServingStatus } from '@kindling/proto/gen/grpc/health/v1/health.ts';
import { BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { FailedPreconditionError, createChannelCredentials, createLogger, startGrpcService, unimplementedMethods, type RunningGrpcService } from '../src/index.ts';
import { healthStatus } from '../src/testing/index.ts';

/** A throwaway CA with a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makePki(dir: string): void {
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=kindling test CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['server', 'client']) {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=kindling ${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.crt`, ...(name === 'server' ? ['-extfile', 'server.ext'] : []));
  }
}

describe('TLS', () => {
  let dir: string;
  let running: RunningGrpcService;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kindling-pki-'));
    makePki(dir);
    running = await startGrpcService({
      name: 'test',
      host: '127.0.0.1',
      port: 0,
      tls: { certPath: join(dir, 'server.crt'), keyPath: join(dir, 'server.key'), caPath: join(dir, 'ca.crt') },
      logger: createLogger('test', 'silent'),
      services: [{ name: 'kindling.planner.v1.BuildService', definition: BuildServiceService, implementation: unimplementedMethods(BuildServiceService, 'test') }],
    });
    running.health.setServing(true);
  });

  after(async () => {
    await running?.shutdown(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client that presents a certificate signed by the CA (mTLS)', async () => {
    const creds = createChannelCredentials({ caPath: join(dir, 'ca.crt'), certPath: join(dir, 'client.crt'), keyPath: join(dir, 'client.key') });
    assert.equal(await healthStatus(running.address, '', creds), HealthCheckResponse_ServingStatus.SERVING);
  });

  it('refuses a client without a certificate', async () => {
    const creds = createChannelCredentials({ caPath: join(dir, 'ca.crt') });
    await assert.rejects(healthStatus(running.address, '', creds), (error: Error & { code?: number }) => error.code === 14);
  });

  it('refuses a plaintext client', async () => {
    await assert.rejects(healthStatus(running.address), (error: Error & { code?: number }) => error.code === 14);
  });

  it('refuses to start with a TLS file that is not PEM, or a key of another certificate, naming the file', async () => {
    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
    const start = (certPath: string, keyPath: string): Promise<RunningGrpcService> =>
      startGrpcService({ name: 'test', host: '127.0.0.1', port: 0, tls: { certPath, keyPath }, logger: createLogger('test', 'silent'), services: [] });
    await assert.rejects(
      start(join(dir, 'garbage.pem'), join(dir, 'server.key')),
      (error: Error) => error instanceof FailedPreconditionError && error.message.includes(`TLS certificate at ${join(dir, 'garbage.pem')}`),
    );
    await assert.rejects(
      start(join(dir, 'server.crt'), join(dir, 'garbage.pem')),
      (error: Error) => error instanceof FailedPreconditionError && error.message.includes(`TLS key at ${join(dir, 'garbage.pem')}`),
    );
    await assert.rejects(
      start(join(dir, 'server.crt'), join(dir, 'client.key')),
      (error: Error) => error instanceof FailedPreconditionError && error.message.includes(`${join(dir, 'server.crt')} and ${join(dir, 'client.key')}`),
    );
    assert.throws(
      () => createChannelCredentials({ caPath: join(dir, 'garbage.pem') }),
      (error: Error) => error instanceof FailedPreconditionError && error.message.includes(`TLS CA bundle at ${join(dir, 'garbage.pem')} holds no PEM certificate`),
    );
  });

  it('refuses to bind a non-loopback address without TLS unless told it is insecure', async () => {
    await assert.rejects(
      startGrpcService({ name: 'test', host: '0.0.0.0', port: 0, logger: createLogger('test', 'silent'), services: [] }),
      (error: Error) => error instanceof FailedPreconditionError && /without TLS/.test(error.message) && /--insecure/.test(error.message),
    );
  });
});
