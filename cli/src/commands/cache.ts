/**
 * `kindling cache ls [--json]` and `kindling cache prune [--all] [--unused-for DURATION] [--keep-bytes N]`:
 * the planner's step cache (ListCacheEntries, PruneCache).
 */
import type { CacheEntry, ListCacheEntriesResponse, PruneCacheRequest, PruneCacheResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { formatAge, formatBytes, printJson, printTable } from '../output/format.ts';
import { parseBytes, parseDuration } from '../quantities.ts';
import { PLANNER, plannerOptions, plannerUsage, usageError, withService } from '../service-call.ts';
import { cacheEntryView } from '../views/build-view.ts';

export const describe = "list or prune the planner's step cache";

const usage = `usage:
  kindling cache ls [--json]
  kindling cache prune [--all] [--unused-for DURATION] [--keep-bytes N] [--json]

ls lists each cached step snapshot, most recently used first. prune removes every entry (--all),
those unused for DURATION (e.g. 24h, 7d, 1h30m), and/or the least recently used until the cache
holds at most N bytes (e.g. 10G); it prints what it removed and the bytes reclaimed.

options:
      --json               one JSON document: ls {"entries": [{key, image, sizeBytes, lastUsed, instruction, ...}],
                           "totalBytes"}; prune {"removed": [...], "reclaimedBytes"}
${plannerUsage}`;

function printEntries(entries: CacheEntry[]): void {
  printTable(
    process.stdout,
    ['KEY', 'SIZE', 'LAST USED', 'INSTRUCTION', 'IMAGE'],
    entries.map((e) => [e.key.replace(/^sha256:/, '').slice(0, 12), formatBytes(Number(e.sizeBytes)), formatAge(e.lastUsed), e.instruction.split('\n')[0] ?? '', e.image]),
  );
}

/** The PruneCache request the flags ask for, or the problem with them. */
export function pruneRequest(values: { all: boolean; 'unused-for'?: string; 'keep-bytes'?: string }): PruneCacheRequest | string {
  if (!values.all && values['unused-for'] === undefined && values['keep-bytes'] === undefined) {
    return 'prune needs --all, --unused-for DURATION or --keep-bytes N (with none it would remove nothing)';
  }
  try {
    const request: PruneCacheRequest = { all: values.all };
    if (values['unused-for'] !== undefined) {
      const ms = parseDuration(values['unused-for'], '--unused-for');
      request.unusedFor = { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
    }
    if (values['keep-bytes'] !== undefined) request.keepBytes = String(parseBytes(values['keep-bytes'], '--keep-bytes'));
    return request;
  } catch (error) {
    return (error as Error).message;
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('cache', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
      'unused-for': { type: 'string' },
      'keep-bytes': { type: 'string' },
      ...plannerOptions,
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (sub !== 'ls' && sub !== 'prune') return usageError('cache', sub === undefined ? 'needs a subcommand (ls or prune)' : `unknown subcommand "${sub}"`, usage);
  if (rest.length > 0) return usageError('cache', `${sub} takes no arguments (got "${rest.join(' ')}")`, usage);
  if (sub === 'ls') {
    return withService('cache ls', PLANNER, values, async (client) => {
      const listed = await unaryCall<ListCacheEntriesResponse>('planner', (cb) => client.listCacheEntries({}, cb));
      if (values.json) printJson(process.stdout, { entries: listed.entries.map(cacheEntryView), totalBytes: Number(listed.totalBytes) });
      else {
        printEntries(listed.entries);
        process.stdout.write(`${listed.entries.length} entries, ${formatBytes(Number(listed.totalBytes))}\n`);
      }
      return 0;
    });
  }
  const request = pruneRequest(values);
  if (typeof request === 'string') return usageError('cache', request, usage);
  return withService('cache prune', PLANNER, values, async (client) => {
    const pruned = await unaryCall<PruneCacheResponse>('planner', (cb) => client.pruneCache(request, cb));
    if (values.json) printJson(process.stdout, { removed: pruned.removed.map(cacheEntryView), reclaimedBytes: Number(pruned.reclaimedBytes) });
    else {
      if (pruned.removed.length > 0) printEntries(pruned.removed);
      process.stdout.write(`removed ${pruned.removed.length} entries, reclaimed ${formatBytes(Number(pruned.reclaimedBytes))} (${pruned.reclaimedBytes} bytes)\n`);
    }
    return 0;
  });
}
