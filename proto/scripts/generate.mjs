#!/usr/bin/env node
// Regenerates proto/gen (ts-proto TypeScript + protoc's descriptor set for reflection) from the
// .proto files. `--check` generates into a temp dir and fails when the committed output differs.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const protoDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(protoDir, '..');
const genDir = join(protoDir, 'gen');
const protocBin = join(repoRoot, 'node_modules/protoc/bin/protoc-linux-x86_64');
const protocInclude = join(repoRoot, 'node_modules/protoc/include');
const tsProtoPlugin = join(repoRoot, 'node_modules/.bin/protoc-gen-ts_proto');

const tsProtoOptions = [
  'outputServices=grpc-js',
  'env=node',
  'oneof=unions-value',
  'forceLong=string',
  'esModuleInterop=true',
  'importSuffix=.ts',
  'useOptionals=messages',
].join(',');

function listProtos(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listProtos(path);
    return name.endsWith('.proto') ? [path] : [];
  });
}

function generate(outDir) {
  const sources = [...listProtos(join(protoDir, 'kindling')), ...listProtos(join(protoDir, 'third_party'))]
    .map((p) => (p.includes('/third_party/') ? relative(join(protoDir, 'third_party'), p) : relative(protoDir, p)))
    .sort();
  execFileSync(
    protocBin,
    [
      `--plugin=protoc-gen-ts_proto=${tsProtoPlugin}`,
      `--ts_proto_out=${outDir}`,
      `--ts_proto_opt=${tsProtoOptions}`,
      `--descriptor_set_out=${join(outDir, 'descriptor_set.binpb')}`,
      '--include_imports',
      '--include_source_info',
      `-I${protoDir}`,
      `-I${join(protoDir, 'third_party')}`,
      `-I${protocInclude}`,
      ...sources,
    ],
    { stdio: 'inherit' },
  );
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((p) => statSync(join(dir, p)).isFile())
    .sort();
}

if (process.argv.includes('--check')) {
  const scratch = mkdtempSync(join(tmpdir(), 'kindling-gen-'));
  try {
    generate(scratch);
    const fresh = listFiles(scratch);
    const committed = listFiles(genDir);
    const drift = [
      ...fresh.filter((f) => !committed.includes(f)).map((f) => `missing in proto/gen: ${f}`),
      ...committed.filter((f) => !fresh.includes(f)).map((f) => `stale in proto/gen: ${f}`),
      ...fresh
        .filter((f) => committed.includes(f))
        .filter((f) => !readFileSync(join(scratch, f)).equals(readFileSync(join(genDir, f))))
        .map((f) => `differs: proto/gen/${f}`),
    ];
    if (drift.length > 0) {
      console.error(`generated code drifted from the .proto files; run "npm run generate" and commit:\n  ${drift.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`proto/gen is up to date (${fresh.length} files)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  const scratch = mkdtempSync(join(tmpdir(), 'kindling-gen-'));
  try {
    generate(scratch);
    rmSync(genDir, { recursive: true, force: true });
    cpSync(scratch, genDir, { recursive: true });
    console.log(`generated ${listFiles(genDir).length} files in proto/gen`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
