/** Shared helpers for the planner's tests: plan a Dockerfile and fail with its diagnostics. */
import assert from 'node:assert/strict';
import { planDockerfile, type PlanOptions } from '../src/domain/planner.ts';
import type { BuildPlan, PlanDiagnostic, PlannedStage, PlannedStep, StepAction } from '../src/domain/plan.ts';

export const describeDiagnostics = (diags: readonly PlanDiagnostic[]): string => diags.map((d) => `${d.severity} ${d.line}:${d.column} ${d.instruction} ${d.message}`).join('\n');

export function planOk(text: string, options: PlanOptions = {}): BuildPlan {
  const outcome = planDockerfile(text, options);
  if (!outcome.ok) assert.fail(`expected a plan, got:\n${describeDiagnostics(outcome.diagnostics)}`);
  return outcome.plan;
}

export function planErrors(text: string, options: PlanOptions = {}): PlanDiagnostic[] {
  const outcome = planDockerfile(text, options);
  assert.equal(outcome.ok, false, `expected errors for:\n${text}`);
  return outcome.diagnostics.filter((d) => d.severity === 'error');
}

export const targetStage = (plan: BuildPlan): PlannedStage => plan.stages[plan.stages.length - 1] as PlannedStage;

/** Steps of the target stage with the given instruction. */
export function stepsOf(plan: BuildPlan, instruction: string): PlannedStep[] {
  return targetStage(plan).steps.filter((s) => s.instruction === instruction);
}

export function onlyStep(plan: BuildPlan, instruction: string): PlannedStep {
  const steps = stepsOf(plan, instruction);
  assert.equal(steps.length, 1, `expected one ${instruction} step`);
  return steps[0] as PlannedStep;
}

export function runAction(step: PlannedStep): Extract<StepAction, { kind: 'run' }> {
  assert.equal(step.action.kind, 'run');
  return step.action as Extract<StepAction, { kind: 'run' }>;
}

export function copyAction(step: PlannedStep): Extract<StepAction, { kind: 'copy' }> {
  assert.equal(step.action.kind, 'copy');
  return step.action as Extract<StepAction, { kind: 'copy' }>;
}

export const envOf = (step: PlannedStep): Record<string, string> =>
  Object.fromEntries(step.context.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
