export { startProvisionerService, provisionerServiceName } from './server.ts';
export { loadProvisionerConfig, provisionerSettings, type ProvisionerConfig } from './config.ts';
