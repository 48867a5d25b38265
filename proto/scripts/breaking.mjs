#!/usr/bin/env node
// Fails when the .proto contracts break compatibility with the published contract: the commit named in
// proto/BREAKING_BASELINE (the first full contract). Later work may extend the API, never break it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const protoDir = fileURLToPath(new URL('..', import.meta.url));
const baseline = readFileSync(new URL('../BREAKING_BASELINE', import.meta.url), 'utf8').trim();
try {
  execFileSync('git', ['cat-file', '-e', `${baseline}^{commit}`], { stdio: 'ignore' });
} catch {
  console.error(`proto/BREAKING_BASELINE names ${baseline}, which is not in this clone's history`);
  process.exit(1);
}
try {
  execFileSync('npx', ['buf', 'breaking', protoDir, '--against', `.git#ref=${baseline},subdir=proto`], {
    stdio: 'inherit',
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
} catch {
  console.error(`the .proto changes above break the published contract (${baseline.slice(0, 12)}): add new fields and messages instead`);
  process.exit(1);
}
console.log(`proto contracts are compatible with ${baseline.slice(0, 12)}`);
