export { startFetcherService, fetcherServiceName } from './server.ts';
export { loadFetcherConfig, fetcherSettings, type FetcherConfig } from './config.ts';
export { createFetcherClient } from './client.ts';
