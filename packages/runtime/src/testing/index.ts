export * from './child-process.ts';
export * from './nats-server.ts';
export * from './reflection-client.ts';
export * from './service-checks.ts';
export * from './metrics-text.ts';
