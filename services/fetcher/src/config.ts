import { loadConfig, serverSettings, type ConfigOf } from '@kindling/runtime';

export const fetcherSettings = {
  ...serverSettings(50052),
};

export type FetcherConfig = ConfigOf<typeof fetcherSettings>;

export function loadFetcherConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): FetcherConfig {
  return loadConfig('KINDLING_FETCHER', fetcherSettings, argv, env);
}
