/**
 * Real-world-style Dockerfiles must plan without error; their plans are compared with the JSON
 * snapshots committed beside them. UPDATE_SNAPSHOTS=1 rewrites the snapshots.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { CatalogImage } from '../src/domain/catalog.ts';
import type { BuildPlan } from '../src/domain/plan.ts';
import { planDockerfile, type PlanOptions } from '../src/domain/planner.ts';
import { describeDiagnostics } from './plan-helpers.ts';

const corpusDir = new URL('./corpus/', import.meta.url);
const update = process.env.UPDATE_SNAPSHOTS === '1';

const catalog: CatalogImage[] = [
  { name: 'debian', tag: '12', kind: 'base-os', digest: 'sha256:' + '1'.repeat(64) },
  { name: 'debian', tag: '12-slim', kind: 'base-os', digest: 'sha256:' + '2'.repeat(64) },
  { name: 'debian', tag: 'bookworm-slim', kind: 'base-os', digest: 'sha256:' + '3'.repeat(64) },
  { name: 'alpine', tag: '3.19', kind: 'base-os', digest: 'sha256:' + '4'.repeat(64) },
];

const optionsFor: Record<string, PlanOptions> = {
  'build-args-and-targets.Dockerfile': { buildArgs: { VERSION: '1.4.2', BASE_TAG: 'bookworm-slim', UNUSED_FLAG: 'x' }, target: 'release' },
  'unused-stages-and-target.Dockerfile': { target: 'prod' },
  'go-multistage.Dockerfile': { buildArgs: { GO_VERSION: '1.22.1', https_proxy: 'http://proxy.internal:3128' } },
};

/** The parts of a plan worth reviewing in a diff: every step, expanded, with its context and key. */
function snapshotOf(plan: BuildPlan): unknown {
  return {
    syntax: plan.syntax,
    escapeToken: plan.escapeToken,
    targetStage: plan.targetStage,
    skippedStages: plan.skippedStages,
    buildArgs: plan.buildArgs,
    unusedBuildArgs: plan.unusedBuildArgs,
    contextSources: plan.contextSources,
    secrets: plan.secrets,
    imageDependencies: plan.imageDependencies,
    stages: plan.stages.map((stage) => ({
      index: stage.index,
      name: stage.name,
      base: stage.base,
      platform: stage.platform,
      dependsOn: stage.dependsOn,
      onBuildTriggers: stage.onBuildTriggers,
      steps: stage.steps.map((step) => ({
        line: step.line,
        endLine: step.endLine,
        expanded: step.expanded,
        user: step.context.user,
        workdir: step.context.workdir,
        env: step.context.env,
        action: step.action,
        inputs: step.inputs,
        cacheKey: step.cacheKey.digest,
        complete: step.cacheKey.complete,
      })),
      image: stage.image,
      cacheKey: stage.cacheKey,
    })),
    image: plan.image,
    cacheKey: plan.cacheKey,
    diagnostics: plan.diagnostics,
  };
}

const files = readdirSync(corpusDir).filter((f) => f.endsWith('.Dockerfile')).sort();

describe('corpus of real-world-style Dockerfiles', () => {
  it('has at least 25 Dockerfiles', () => assert.ok(files.length >= 25, `only ${files.length}`));

  for (const file of files) {
    it(file, () => {
      const text = readFileSync(new URL(file, corpusDir), 'utf8');
      const outcome = planDockerfile(text, { images: catalog, ...optionsFor[file] });
      if (!outcome.ok) assert.fail(`${file} did not plan:\n${describeDiagnostics(outcome.diagnostics)}`);
      const actual = JSON.stringify(snapshotOf(outcome.plan), null, 2) + '\n';
      const snapshotUrl = new URL(file.replace(/\.Dockerfile$/, '.plan.json'), corpusDir);
      if (!existsSync(snapshotUrl) && process.env.CI) assert.fail(`${file} has no snapshot; run the test with UPDATE_SNAPSHOTS=1 and commit it`);
      if (update || !existsSync(snapshotUrl)) {
        writeFileSync(snapshotUrl, actual);
        return;
      }
      assert.equal(actual, readFileSync(snapshotUrl, 'utf8'), `${file}: plan differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it after review)`);
    });
  }
});
