import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Type, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { credentials } from '@grpc/grpc-js';
import * as v1alpha from '@kindling/proto/gen/grpc/reflection/v1alpha/reflection.ts';
import type { RunningGrpcService } from '../src/index.ts';
import { DescriptorIndex } from '../src/grpc/reflection.ts';
import { ReflectionTestClient } from '../src/testing/index.ts';
import { startBuildService } from './support.ts';

describe('reflection resolves every named descriptor as protoc names it', () => {
  let running: RunningGrpcService;
  before(async () => {
    running = await startBuildService();
  });
  after(async () => {
    await running.shutdown(100);
  });

  it('finds values of enums nested in messages, and oneofs (grpcurl describe grpc.health.v1.HealthCheckResponse.SERVING)', async () => {
    const reflection = new ReflectionTestClient(running.address);
    try {
      const health = await reflection.resolveSymbol('grpc.health.v1.HealthCheckResponse.SERVING');
      assert.ok(health.getMessage('grpc.health.v1.HealthCheckResponse'));
      const events = await reflection.resolveSymbol('kindling.events.v1.BuildEvent.payload');
      assert.ok(events.getMessage('kindling.events.v1.BuildEvent'));
    } finally {
      reflection.close();
    }
  });

  it('answers v1alpha on one stream: an unknown symbol is NOT_FOUND in the response and the stream goes on', async () => {
    const client = new v1alpha.ServerReflectionClient(running.address, credentials.createInsecure());
    try {
      const stream = client.serverReflectionInfo();
      const responses: v1alpha.ServerReflectionResponse[] = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.on('data', (response: v1alpha.ServerReflectionResponse) => responses.push(response));
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      stream.write({ host: '', messageRequest: { $case: 'fileContainingSymbol', value: 'kindling.nope.v1.Nothing' } });
      stream.write({ host: '', messageRequest: { $case: 'allExtensionNumbersOfType', value: 'grpc.health.v1.HealthCheckRequest' } });
      stream.write({ host: '', messageRequest: { $case: 'listServices', value: '' } });
      stream.end();
      await done;
      const [unknown, extensions, list] = responses.map((r) => r.messageResponse);
      assert.equal(unknown?.$case, 'errorResponse');
      assert.equal(unknown.value.errorCode, 5);
      assert.deepEqual(extensions, {
        $case: 'allExtensionNumbersResponse',
        value: { baseTypeName: 'grpc.health.v1.HealthCheckRequest', extensionNumber: [] },
      });
      assert.equal(list?.$case, 'listServicesResponse');
      assert.ok(list.value.service.some((s) => s.name === 'kindling.planner.v1.BuildService'));
    } finally {
      client.close();
    }
  });
});

describe('DescriptorIndex extensions', () => {
  const set = create(FileDescriptorSetSchema, {
    file: [
      { name: 'base.proto', package: 'demo', messageType: [{ name: 'Base', extensionRange: [{ start: 100, end: 200 }] }] },
      {
        name: 'ext.proto',
        package: 'demo.ext',
        dependency: ['base.proto'],
        extension: [{ name: 'colour', number: 101, extendee: '.demo.Base', type: FieldDescriptorProto_Type.STRING }],
        messageType: [
          { name: 'Holder', extension: [{ name: 'size', number: 100, extendee: '.demo.Base', type: FieldDescriptorProto_Type.INT32 }] },
        ],
      },
    ],
  });
  const index = new DescriptorIndex(toBinary(FileDescriptorSetSchema, set));

  it('lists the extension numbers of a type and serves the file declaring one, with its dependencies', () => {
    assert.deepEqual(index.extensionNumbersOf('demo.Base'), [100, 101]);
    assert.equal(index.filesForExtension('demo.Base', 101)?.length, 2);
    assert.equal(index.filesForExtension('demo.Base', 102), undefined);
    assert.ok(index.hasSymbol('demo.ext.colour'));
    assert.ok(index.hasSymbol('demo.ext.Holder.size'));
  });
});
