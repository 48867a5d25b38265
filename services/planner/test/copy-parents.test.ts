/**
 * COPY and COPY --parents as the step executor runs them: sources listed by a real fetcher over gRPC
 * (through the planner's fetcher client), handed to the guest as PutFiles. The guest only records
 * the request (no VM): the provisioner's own tests put such listings in place over a real sshd.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadFetcherConfig, startFetcherService } from '@kindling/fetcher';
import type { PutFilesRequest } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { createLogger, type RunningGrpcService } from '@kindling/runtime';
import { GrpcBuildContextSource } from '../src/adapters/clients/fetcher-client.ts';
import { executeStep } from '../src/execution/step-executor.ts';
import type { BuildGuest, BuildVmHost } from '../src/ports/build-services.ts';
import { onlyStep, planOk } from './plan-helpers.ts';

describe('COPY sources through a real fetcher', () => {
  let dir: string;
  let fetcher: RunningGrpcService;
  let context: GrpcBuildContextSource;
  let contextId: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kindling-planner-parents-'));
    const root = join(dir, 'context');
    mkdirSync(join(root, 'src/cmd/tool'), { recursive: true });
    mkdirSync(join(root, 'src/pkg'), { recursive: true });
    writeFileSync(join(root, 'Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(root, 'main.go'), 'package main\n');
    writeFileSync(join(root, 'src/cmd/tool/main.go'), 'package main\n');
    writeFileSync(join(root, 'src/pkg/lib.go'), 'package pkg\n');
    const logger = createLogger('test', 'silent');
    fetcher = await startFetcherService(loadFetcherConfig(['--port=0', `--cache-dir=${join(dir, 'cache')}`], {}), { logger });
    fetcher.health.setServing(true);
    context = new GrpcBuildContextSource(`127.0.0.1:${fetcher.port}`);
    const signal = new AbortController().signal;
    contextId = (await context.resolve({ source: { $case: 'contextPath', value: root }, dockerfilePath: '' }, signal)).contextId;
  });

  after(async () => {
    context?.close();
    await fetcher?.shutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the one COPY of a Dockerfile and returns each listed file as "path <match root>". */
  async function copied(dockerfile: string): Promise<string[]> {
    const requests: PutFilesRequest[] = [];
    const guest: BuildGuest = {
      waitReady: async () => {},
      exec: async () => ({ exitCode: 0, signal: '', timedOut: false }),
      putFiles: async (request) => {
        requests.push(request);
        return { filesWritten: 0, directoriesCreated: 0, symlinksCreated: 0, bytesWritten: '0', archivesExtracted: 0, filesFromTransferDisk: 0 };
      },
      closeSession: async () => {},
    };
    const step = onlyStep(planOk(dockerfile), 'COPY');
    await executeStep(
      {
        buildId: 'b-test',
        target: { host: '127.0.0.1', port: 22, user: 'root', privateKey: '', agentSocket: '', hostKey: '', insecureIgnoreHostKey: false, sessionId: '' },
        contextId,
        secrets: new Map(),
        guest,
        context,
        vmHost: {} as BuildVmHost,
        stageImages: new Map(),
        imageNamed: () => assert.fail('no images here'),
        signal: new AbortController().signal,
        onOutput: () => {},
        warn: () => {},
      },
      step,
    );
    assert.ok(requests.length <= 1);
    return (requests[0]?.sources ?? []).flatMap((s) => s.files.map((f) => `${f.path} <${f.matchRoot}>`));
  }

  it('plain COPY: "**" is "*", so src/**/*.go matches exactly one directory below src, each file its own root', async () => {
    assert.deepEqual(await copied('FROM scratch\nCOPY src/**/*.go /app/\n'), ['src/pkg/lib.go <src/pkg/lib.go>']);
    // **/main.go is */main.go: main.go at the top does not match, and as in BuildKit that copies nothing.
    assert.deepEqual(await copied('FROM scratch\nCOPY **/main.go /app/\n'), []);
    await assert.rejects(copied('FROM scratch\nCOPY nowhere/*.go /app/\n'), /"nowhere" is not a directory of the build context/);
  });

  it('COPY --parents: "**" spans directories and every file has the context root as match root', async () => {
    assert.deepEqual(await copied('FROM scratch\nCOPY --parents **/*.go /app/\n'), [
      'main.go <.>',
      'src <.>',
      'src/cmd <.>',
      'src/cmd/tool <.>',
      'src/cmd/tool/main.go <.>',
      'src/pkg <.>',
      'src/pkg/lib.go <.>',
    ]);
  });

  it('COPY --parents with a /./ pivot: files keep their path below the pivot, which is their match root', async () => {
    assert.deepEqual(await copied('FROM scratch\nCOPY --parents ./src/./**/lib.go /app/\n'), [
      'src <src>',
      'src/pkg <src>',
      'src/pkg/lib.go <src>',
    ]);
  });
});
