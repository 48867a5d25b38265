import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { ProvisionerServiceClient, ProvisionerServiceService } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { pino } from 'pino';
import { startGrpcService, unary, unimplementedMethods } from '../src/index.ts';

it("logs a provisioner call with the guest's session (VM) id, and never the SSH key it carries", async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const running = await startGrpcService({
    name: 'test',
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'info' }, sink),
    services: [
      {
        name: 'kindling.provisioner.v1.ProvisionerService',
        definition: ProvisionerServiceService,
        implementation: {
          ...unimplementedMethods(ProvisionerServiceService, 'the test issue'),
          waitReady: unary(async () => ({ attempts: 1, serverVersion: 'SSH-2.0-test', failedAttempts: [] })),
        },
      },
    ],
  });
  const client = new ProvisionerServiceClient(running.address, credentials.createInsecure());
  t.after(async () => {
    client.close();
    await running.shutdown(100);
  });
  const target = { host: '10.200.0.5', port: 22, user: 'root', privateKey: 'PRIVATE-KEY-MATERIAL', agentSocket: '', hostKey: '', insecureIgnoreHostKey: false, sessionId: 'vm-7' };
  await new Promise<void>((resolve, reject) => client.waitReady({ target }, (error) => (error ? reject(error) : resolve())));
  let line: { method?: string; code?: string; sessionId?: string; durationMs?: number } | undefined;
  for (let i = 0; i < 100 && !line; i++) {
    line = lines.map((l) => JSON.parse(l) as NonNullable<typeof line>).find((l) => l.method?.endsWith('/WaitReady'));
    if (!line) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(line?.code, 'OK');
  assert.equal(line?.sessionId, 'vm-7');
  assert.equal(typeof line?.durationMs, 'number');
  assert.ok(!lines.join('\n').includes('PRIVATE-KEY-MATERIAL'), 'the private key is never logged');
});
