export { startPlannerService, plannerServiceName } from './server.ts';
export { loadPlannerConfig, plannerSettings, type PlannerConfig } from './config.ts';
