export { startVmmService, vmmServiceName } from './server.ts';
export { loadVmmConfig, vmmSettings, type VmmConfig } from './config.ts';
