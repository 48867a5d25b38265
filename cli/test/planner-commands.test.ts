/**
 * cache ls/prune, build --progress=json, builds, watch and cancel against a real planner process whose
 * VM host is a real vmm process (no VM boots: the build fails at its base image, which the store lacks).
 * The step cache is the vmm's kindling-cache/* images, imported here as a build would have committed them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importImage, jsonOf, kindling, makeExt4, startPlanner, startVmm, tempDir } from './support/cli-services.ts';

interface CacheJson {
  entries: { key: string; image: string; vmmHost: string; sizeBytes: number; instruction: string; created: string; lastUsed: string }[];
  totalBytes: number;
}
interface PruneJson {
  removed: CacheJson['entries'];
  reclaimedBytes: number;
}
interface EventJson {
  buildId: string;
  sequence: string;
  state?: { state: string; error?: { message: string } };
}

const keyOf = (n: number): string => `sha256:${String(n).repeat(64)}`;

test('kindling cache, build --progress=json, builds, watch and cancel against a real planner', async (t) => {
  const dir = tempDir(t, 'planner');
  const vmm = await startVmm(t, dir);
  const planner = await startPlanner(t, vmm.address);
  const at = ['--planner', planner];
  // Oldest first: the planner has no use records yet, so last use is each snapshot's creation.
  for (const [n, instruction] of [[1, 'RUN apt-get update'], [2, 'RUN make'], [3, 'COPY . /src']] as const) {
    await importImage(vmm, makeExt4(dir, `step${n}`), `kindling-cache/${keyOf(n).slice(7)}:latest`, {
      labels: { 'kindling.cache.key': keyOf(n), 'kindling.cache.instruction': instruction },
    });
  }

  await t.test('cache ls lists the snapshots, most recently used first, with their sizes and instructions', async () => {
    const listed = jsonOf<CacheJson>(await kindling(['cache', 'ls', '--json', ...at]));
    assert.deepEqual(listed.entries.map((e) => [e.key, e.instruction, e.vmmHost]), [
      [keyOf(3), 'COPY . /src', 'clitest'],
      [keyOf(2), 'RUN make', 'clitest'],
      [keyOf(1), 'RUN apt-get update', 'clitest'],
    ]);
    assert.ok(listed.entries.every((e) => e.sizeBytes > 0 && e.image === `kindling-cache/${e.key.slice(7)}:latest` && e.lastUsed >= e.created));
    assert.equal(listed.totalBytes, listed.entries.reduce((n, e) => n + e.sizeBytes, 0));
    const table = await kindling(['cache', 'ls', ...at]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^KEY\s+SIZE\s+LAST USED\s+INSTRUCTION\s+IMAGE\n3{12}\s.*COPY \. \/src/);
    assert.match(table.stdout, /\n3 entries, [\d.]+ KiB\n$/);
  });

  await t.test('cache prune --keep-bytes removes the least recently used until the rest fits; --all the rest', async () => {
    const before = jsonOf<CacheJson>(await kindling(['cache', 'ls', '--json', ...at]));
    const newest = before.entries[0]!;
    const kept = jsonOf<PruneJson>(await kindling(['cache', 'prune', '--keep-bytes', String(newest.sizeBytes), '--json', ...at]));
    assert.deepEqual(kept.removed.map((e) => e.key).sort(), [keyOf(1), keyOf(2)]);
    assert.equal(kept.reclaimedBytes, before.totalBytes - newest.sizeBytes);
    const all = await kindling(['cache', 'prune', '--all', ...at]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`^KEY.*\\n3{12}\\s.*\\nremoved 1 entries, reclaimed [\\d.]+ KiB \\(${newest.sizeBytes} bytes\\)\\n$`));
    assert.deepEqual(jsonOf(await kindling(['cache', 'ls', '--json', ...at])), { entries: [], totalBytes: 0 });
    // The snapshots are gone from the vmm too.
    const images = jsonOf<{ images: unknown[] }>(await kindling(['images', '-a', '--json', '--vmm', vmm.address]));
    assert.deepEqual(images.images, []);
  });

  await t.test('cache prune without a criterion, or with a bad one, is a usage error', async () => {
    for (const [args, message] of [
      [[], /prune needs --all, --unused-for DURATION or --keep-bytes N/],
      [['--unused-for', 'soon'], /--unused-for "soon": expected a duration such as 90s, 30m, 24h, 7d or 1h30m/],
      [['--keep-bytes', 'lots'], /--keep-bytes "lots": expected a size in bytes/],
    ] as const) {
      const result = await kindling(['cache', 'prune', ...args, ...at]);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, message);
    }
    const recent = jsonOf<PruneJson>(await kindling(['cache', 'prune', '--unused-for', '1h30m', '--json', ...at]));
    assert.deepEqual(recent, { removed: [], reclaimedBytes: 0 });
  });

  await t.test('build --progress=json prints one event per line; builds, watch and cancel see the same build', async () => {
    const built = await kindling(['build', '--progress=json', '-t', 'app:1', ...at, '-'], 'FROM debian:bookworm\nRUN true\n');
    assert.equal(built.code, 1, built.stderr);
    const events = built.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as EventJson);
    const buildId = events[0]!.buildId;
    const traceId = new RegExp(`^=> build ${buildId} \\(trace ([0-9a-f]{32})\\)\\n`).exec(built.stderr)?.[1];
    assert.ok(traceId, `the build's id and trace id come first: ${built.stderr}`);
    assert.deepEqual(events.map((e) => Number(e.sequence)), events.map((_, i) => i + 1));
    assert.ok(events.every((e) => e.buildId === buildId));
    const last = events.at(-1)!;
    assert.equal(last.state?.state, 'BUILD_STATE_FAILED');
    assert.match(last.state?.error?.message ?? '', /debian:bookworm/);

    const builds = jsonOf<{ builds: { id: string; state: string; tag: string; error: { message: string } | null; traceId: string }[] }>(await kindling(['builds', '--json', ...at]));
    assert.deepEqual(builds.builds.map((b) => [b.id, b.state, b.tag, b.traceId]), [[buildId, 'failed', 'app:1', traceId]]);
    const table = await kindling(['builds', ...at]);
    assert.match(table.stdout, new RegExp(`^BUILD ID\\s+STATE\\s+TAG\\s+STEPS\\s+CREATED\\s+RESULT\\n${buildId}\\s+failed\\s+app:1\\s`));

    const watched = await kindling(['watch', '--progress=json', buildId, ...at]);
    assert.equal(watched.code, 1);
    assert.equal(watched.stdout, built.stdout);
    const plain = await kindling(['watch', '--progress=plain', buildId, ...at]);
    assert.match(plain.stdout, /=> build failed\nERROR: .*debian:bookworm/);

    const cancelled = await kindling(['cancel', buildId, ...at]);
    assert.deepEqual([cancelled.code, cancelled.stdout], [0, `${buildId} had already ended: failed\n`], cancelled.stderr);
    const unknown = await kindling(['watch', 'no-such-build', ...at]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`^kindling watch: planner at ${planner}: [^\\n]*no-such-build[^\\n]*\\n$`));
    const badMode = await kindling(['build', '--progress=fancy', '-t', 'app:1', ...at, '-']);
    assert.equal(badMode.code, 2);
    assert.match(badMode.stderr, /^kindling build: --progress "fancy": expected one of auto, tty, plain, json\n/);
  });
});
