import { loadConfig, serverSettings, type ConfigOf } from '@kindling/runtime';

export const vmmSettings = {
  ...serverSettings(50053),
};

export type VmmConfig = ConfigOf<typeof vmmSettings>;

export function loadVmmConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): VmmConfig {
  return loadConfig('KINDLING_VMM', vmmSettings, argv, env);
}
