import assert from 'node:assert/strict';
import { it } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { BuildServiceClient } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { ProvisionerServiceClient, ProvisionerServiceService } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { startGrpcService, unary, unimplementedMethods } from '../src/index.ts';
import { captureLog, startBuildService } from './support.ts';

it("logs a provisioner call with the guest's session (VM) id, and never the SSH key it carries", async (t) => {
  const log = captureLog();
  const running = await startGrpcService({
    name: 'test',
    host: '127.0.0.1',
    port: 0,
    logger: log.logger,
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
  let line: (typeof log.lines)[number] | undefined;
  for (let i = 0; i < 100 && !line; i++) {
    line = log.lines.find((l) => typeof l.method === 'string' && l.method.endsWith('/WaitReady'));
    if (!line) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(line?.code, 'OK');
  assert.equal(line?.sessionId, 'vm-7');
  assert.equal(typeof line?.durationMs, 'number');
  assert.ok(!log.text().includes('PRIVATE-KEY-MATERIAL'), 'the private key is never logged');
});

it('two servers in one process each log their calls under their own logger', async (t) => {
  const logs = [captureLog({ service: 'first' }), captureLog({ service: 'second' })];
  const servers = await Promise.all(logs.map((log) => startBuildService({ getBuild: unary(async () => ({ build: undefined })) }, log.logger)));
  t.after(async () => {
    for (const server of servers) await server.shutdown(100);
  });
  for (const [index, server] of servers.entries()) {
    const client = new BuildServiceClient(server.address, credentials.createInsecure());
    await new Promise<void>((resolve, reject) => client.getBuild({ buildId: `b${index}` }, (error) => (error ? reject(error) : resolve())));
    client.close();
  }
  const rpcLines = (index: number): Array<Record<string, unknown>> => logs[index]!.lines.filter((l) => l.msg === 'rpc');
  for (let i = 0; i < 100 && (rpcLines(0).length === 0 || rpcLines(1).length === 0); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(rpcLines(0).map((l) => l.buildId), ['b0']);
  assert.deepEqual(rpcLines(1).map((l) => l.buildId), ['b1']);
});
