export { startPlannerService, plannerServiceName } from './server.ts';
export { loadPlannerConfig, plannerSettings, type PlannerConfig } from './config.ts';
// In-process planning for the CLI (`kindling plan` without a planner server).
export { planDockerfile, type PlanOptions } from './domain/planner.ts';
export { toProtoPlan, toProtoDiagnostic } from './adapters/grpc/plan-conversion.ts';
