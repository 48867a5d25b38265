import { loadConfig, serverSettings, type ConfigOf } from '@kindling/runtime';

export const plannerSettings = {
  ...serverSettings(50051),
};

export type PlannerConfig = ConfigOf<typeof plannerSettings>;

export function loadPlannerConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): PlannerConfig {
  return loadConfig('KINDLING_PLANNER', plannerSettings, argv, env);
}
