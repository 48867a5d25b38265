export { startFetcherService, fetcherServiceName } from './server.ts';
export { loadFetcherConfig, fetcherSettings, type FetcherConfig } from './config.ts';
