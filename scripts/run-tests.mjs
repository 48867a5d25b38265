#!/usr/bin/env node
// Runs every *.test.ts under a test/ directory (or those under the paths given) with node's test
// runner through tsx, one file at a time: VM tests use both cores, and test netns names must not clash.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = process.cwd();
const skip = new Set(['node_modules', '.git', 'gen', '.cache']);

function findTests(dir, underTest = false) {
  return readdirSync(dir).flatMap((name) => {
    if (skip.has(name)) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return findTests(path, underTest || name === 'test');
    return underTest && name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const wanted = process.argv.slice(2);
const files = findTests(root)
  .filter((file) => wanted.length === 0 || wanted.some((w) => file.startsWith(w)))
  .sort();
if (files.length === 0) {
  console.error(`no test files found${wanted.length ? ` under ${wanted.join(', ')}` : ''}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
