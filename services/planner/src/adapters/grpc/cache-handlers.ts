/** gRPC handlers of the step-cache RPCs: ListCacheEntries and PruneCache. */
import type { BuildServiceServer, CacheEntry as ProtoCacheEntry } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { InvalidArgumentError, unary } from '@kindling/runtime';
import type { CacheEntry, StepCache } from '../../execution/step-cache.ts';

type CacheHandlers = Pick<BuildServiceServer, 'listCacheEntries' | 'pruneCache'>;

function toProto(entry: CacheEntry): ProtoCacheEntry {
  return { ...entry, sizeBytes: String(entry.sizeBytes) };
}

export function cacheHandlers(cache: StepCache): CacheHandlers {
  return {
    listCacheEntries: unary(async (_request, ctx) => {
      const entries = await cache.list(ctx.signal);
      return { entries: entries.map(toProto), totalBytes: String(entries.reduce((n, e) => n + e.sizeBytes, 0)) };
    }),
    pruneCache: unary(async (request, ctx) => {
      const unusedForMs = request.unusedFor ? Number(request.unusedFor.seconds) * 1000 + request.unusedFor.nanos / 1e6 : undefined;
      if (unusedForMs !== undefined && unusedForMs < 0) throw new InvalidArgumentError('unused_for: must not be negative');
      const keepBytes = request.keepBytes === undefined ? undefined : Number(request.keepBytes);
      const removed = await cache.prune(
        { all: request.all, ...(unusedForMs === undefined ? {} : { unusedForMs }), ...(keepBytes === undefined ? {} : { keepBytes }) },
        ctx.signal,
      );
      return { removed: removed.map(toProto), reclaimedBytes: String(removed.reduce((n, e) => n + e.sizeBytes, 0)) };
    }),
  };
}
