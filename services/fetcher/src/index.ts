export { startFetcherService, fetcherServiceName } from './server.ts';
export { loadFetcherConfig, fetcherSettings, type FetcherConfig } from './config.ts';
export { createFetcherClient, FETCHER_FLOW_CONTROL_WINDOW } from './client.ts';
