import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { BuildServiceClient, BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
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

it('two servers in one process each log their calls under their own logger', async (t) => {
  const sinks = { first: [] as string[], second: [] as string[] };
  const servers = await Promise.all(
    (['first', 'second'] as const).map((name) =>
      startGrpcService({
        name,
        host: '127.0.0.1',
        port: 0,
        logger: pino(
          { level: 'info', base: { service: name } },
          new Writable({
            write(chunk: Buffer, _encoding, done) {
              sinks[name].push(...chunk.toString().split('\n').filter((l) => l.includes('"rpc"')));
              done();
            },
          }),
        ),
        services: [
          {
            name: 'kindling.planner.v1.BuildService',
            definition: BuildServiceService,
            implementation: { ...unimplementedMethods(BuildServiceService, 'the test issue'), getBuild: unary(async () => ({ build: undefined })) },
          },
        ],
      }),
    ),
  );
  t.after(async () => {
    for (const server of servers) await server.shutdown(100);
  });
  for (const [index, server] of servers.entries()) {
    const client = new BuildServiceClient(server.address, credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.getBuild({ buildId: `b${index}` }, (error) => (error ? reject(error) : resolve())));
    client.close();
  }
  for (let i = 0; i < 100 && (sinks.first.length === 0 || sinks.second.length === 0); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(sinks.first.length, 1);
  assert.match(sinks.first[0]!, /"buildId":"b0"/);
  assert.equal(sinks.second.length, 1);
  assert.match(sinks.second[0]!, /"buildId":"b1"/);
});
