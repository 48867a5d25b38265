/** gRPC handlers of the build RPCs: validate and convert, then call the BuildCoordinator. */
import type { BuildServiceServer } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { serverStream, unary } from '@kindling/runtime';
import type { BuildCoordinator } from '../../execution/build-coordinator.ts';

type BuildHandlers = Pick<BuildServiceServer, 'createBuild' | 'getBuild' | 'listBuilds' | 'cancelBuild' | 'watchBuild'>;

export function buildHandlers(builds: BuildCoordinator): BuildHandlers {
  return {
    createBuild: unary(async (request) => {
      const build = await builds.create(request);
      return { buildId: build.id, build };
    }),
    getBuild: unary(async (request) => ({ build: await builds.get(request.buildId) })),
    listBuilds: unary(async (request) => builds.list(request.pageSize, request.pageToken, request.state)),
    cancelBuild: unary(async (request) => ({ build: await builds.cancel(request.buildId, request.reason) })),
    watchBuild: serverStream(async (request, ctx, send) => {
      await builds.watch(request.buildId, Number(request.afterSequence), request.follow, (event) => send({ event }), ctx.signal);
    }),
  };
}
