/**
 * Test support: what every kindling gRPC service must answer — reflection lists the service and
 * grpc.health.v1.Health, every method's request and response types resolve with their imports (as
 * grpcurl describe needs), and Health/Check says SERVING.
 */
import assert from 'node:assert/strict';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import {
  HealthCheckResponse_ServingStatus,
  HealthClient,
  type HealthCheckResponse,
} from '@kindling/proto/gen/grpc/health/v1/health.ts';
import { ReflectionTestClient } from './reflection-client.ts';

export async function healthStatus(
  address: string,
  service = '',
  channelCredentials: ChannelCredentials = credentials.createInsecure(),
): Promise<HealthCheckResponse_ServingStatus> {
  const client = new HealthClient(address, channelCredentials);
  try {
    const response = await new Promise<HealthCheckResponse>((resolve, reject) =>
      client.check({ service }, (error, r) => (error ? reject(error) : resolve(r))),
    );
    return response.status;
  } finally {
    client.close();
  }
}

export async function assertServiceBasics(address: string, serviceName: string): Promise<void> {
  const reflection = new ReflectionTestClient(address);
  try {
    const services = await reflection.listServices();
    assert.ok(services.includes(serviceName), `reflection lists ${serviceName}: ${services.join(', ')}`);
    assert.ok(services.includes('grpc.health.v1.Health'), `reflection lists grpc.health.v1.Health: ${services.join(', ')}`);
    const registry = await reflection.resolveSymbol(serviceName);
    const service = registry.getService(serviceName);
    assert.ok(service, `${serviceName} resolves`);
    for (const method of service.methods) {
      for (const message of [method.input, method.output]) {
        for (const field of message.fields) {
          if (field.message) assert.ok(registry.getMessage(field.message.typeName), `${message.typeName}.${field.name} type resolves`);
        }
      }
    }
    const healthRegistry = await reflection.resolveSymbol('grpc.health.v1.Health');
    assert.ok(healthRegistry.getService('grpc.health.v1.Health'));
  } finally {
    reflection.close();
  }
  assert.equal(await healthStatus(address), HealthCheckResponse_ServingStatus.SERVING);
  assert.equal(await healthStatus(address, serviceName), HealthCheckResponse_ServingStatus.SERVING);
}
