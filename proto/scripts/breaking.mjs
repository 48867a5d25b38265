#!/usr/bin/env node
// Fails when the .proto contracts break compatibility with a published contract: the commit named in
// proto/BREAKING_BASELINE (the first full contract) or any later commit that changed proto/kindling.
// Later work may extend the API, never break it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const protoDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const baseline = readFileSync(new URL('../BREAKING_BASELINE', import.meta.url), 'utf8').trim();
try {
  execFileSync('git', ['cat-file', '-e', `${baseline}^{commit}`], { stdio: 'ignore' });
} catch {
  console.error(`proto/BREAKING_BASELINE names ${baseline}, which is not in this clone's history`);
  process.exit(1);
}
// Every published state counts, not only the first: a field added after the baseline and renumbered
// later is a break that a comparison with the baseline alone cannot see.
const published = [
  baseline,
  ...execFileSync('git', ['rev-list', '--reverse', `${baseline}..HEAD`, '--', 'proto/kindling'], { encoding: 'utf8', cwd: repoRoot })
    .split('\n')
    .filter(Boolean),
];
for (const commit of published) {
  try {
    execFileSync('npx', ['buf', 'breaking', protoDir, '--against', `.git#ref=${commit},subdir=proto`], { stdio: 'inherit', cwd: repoRoot });
  } catch {
    console.error(`the .proto changes above break the contract published in ${commit.slice(0, 12)}: add new fields and messages instead`);
    process.exit(1);
  }
}
console.log(`proto contracts are compatible with ${baseline.slice(0, 12)} and the ${published.length - 1} contract changes since`);
