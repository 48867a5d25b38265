#!/usr/bin/env node
// npm run test:faults               the fault suite (as CI runs it) and the planner-restart test
// npm run test:faults -- --soak 50  50 builds with random faults: prints faults injected / builds
//                                   ended cleanly / leaks found, and exits non-zero on any leak
import { spawnSync } from 'node:child_process';

const soak = process.argv.indexOf('--soak');
if (soak < 0) {
  const result = spawnSync(process.execPath, ['scripts/run-tests.mjs', 'test/faults.test.ts', 'test/planner-restart.test.ts'], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
const builds = process.argv[soak + 1] ?? '50';
const netns = `kindling-soak-${process.pid}`;
const ip = (...args) => spawnSync('ip', args, { encoding: 'utf8' });
if (ip('netns', 'add', netns).status !== 0) throw new Error(`cannot create netns ${netns} (needs root)`);
try {
  ip('-n', netns, 'link', 'set', 'lo', 'up');
  const result = spawnSync('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', 'test/support/faults-scenario.ts', '--soak', builds], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(result.stdout);
  const leaks = Number(/^total\s+\d+\s+\d+\s+(\d+)$/m.exec(result.stdout)?.[1] ?? NaN);
  process.exitCode = result.status === 0 && leaks === 0 ? 0 : 1;
} finally {
  ip('netns', 'del', netns);
}
