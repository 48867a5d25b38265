/**
 * PlanBuild over gRPC. A Dockerfile with errors answers INVALID_ARGUMENT; the status details carry
 * the PlanBuildResponse with every diagnostic, as the contract says.
 */
import { PlanBuildResponse, type BuildServiceServer } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { InvalidArgumentError, unary } from '@kindling/runtime';
import { planBuild } from '../../domain/plan-build.ts';
import type { ImageCatalog } from '../../ports/image-catalog.ts';
import { toProtoDiagnostic, toProtoPlan } from './plan-conversion.ts';

export function planHandlers(catalog: ImageCatalog): Pick<BuildServiceServer, 'planBuild'> {
  return {
    planBuild: unary(async (request, ctx) => {
      const file = request.dockerfilePath || 'Dockerfile';
      const outcome = await planBuild({ dockerfile: request.dockerfile, buildArgs: request.buildArgs, target: request.target, platform: request.platform }, catalog, ctx.signal);
      const response: PlanBuildResponse = { diagnostics: outcome.diagnostics.map((d) => toProtoDiagnostic(d, file)) };
      if (outcome.ok) {
        response.plan = toProtoPlan(outcome.plan, file);
        return response;
      }
      const errors = outcome.diagnostics.filter((d) => d.severity === 'error');
      const lines = errors.map((d) => (d.line > 0 ? `${file}:${d.line}:${d.column}: ${d.message}` : `${file}: ${d.message}`));
      throw new InvalidArgumentError(`${file} has ${errors.length} error${errors.length === 1 ? '' : 's'}:\n${lines.join('\n')}`, {
        details: [{ typeName: 'kindling.planner.v1.PlanBuildResponse', value: PlanBuildResponse.encode(response).finish() }],
      });
    }),
  };
}
