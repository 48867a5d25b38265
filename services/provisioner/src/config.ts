import { loadConfig, serverSettings, type ConfigOf } from '@kindling/runtime';

export const provisionerSettings = {
  ...serverSettings(50054),
};

export type ProvisionerConfig = ConfigOf<typeof provisionerSettings>;

export function loadProvisionerConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): ProvisionerConfig {
  return loadConfig('KINDLING_PROVISIONER', provisionerSettings, argv, env);
}
