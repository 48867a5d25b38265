/**
 * `kindling build [-f Dockerfile] -t name:tag [--build-arg K=V]... [--target T] [--secret id=ID,src=PATH|env=VAR]
 *  [--progress MODE] CONTEXT` — starts a build on the planner (CreateBuild) and follows its events
 *  (WatchBuild) to the end.
 */
import { resolve } from 'node:path';
import { fstatSync } from 'node:fs';
import { BuildState } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import { FetcherServiceClient } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import { BuildServiceClient, type BuildSecret, type BuildSource, type CreateBuildResponse } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { createServiceClient, type TlsFiles } from '@kindling/runtime';
import { followBuild } from '../build-follow.ts';
import { firebuildOptions, firebuildUsage, resolveFirebuildFlags } from '../firebuild-flags.ts';
import { isProgressMode, progressRenderer, PROGRESS_MODES, type ProgressRenderer } from '../output/progress.ts';
import { parseBuildArgs } from '../build-args.ts';
import { describeCallFailure } from '../call-failure.ts';
import { notWholeNumber, parseCommandLine, tlsFilesOf, tlsOptions } from '../command-line.ts';
import { uploadContext } from '../context-upload.ts';
import { readStdinContext, type StdinContext } from '../stdin-context.ts';

export const describe = 'build a Dockerfile into a microVM image on the planner';

const usage = `usage: kindling build [options] CONTEXT

CONTEXT is a directory (read on the fetcher's host), an http(s) URL of a Dockerfile, a git URL (https://host/repo.git#ref:subdir,
git@host:repo.git#ref, ssh://, git+https://; git:// only where the fetcher's --allowed-schemes has git),
a tarball URL (.tar, .tar.gz, .tar.zst), or "-" to read stdin: a .tar, .tar.gz or .tar.zst stream
(kindling build -t app:dev - < ctx.tar.gz) is uploaded to the fetcher and is the context (-f names the
Dockerfile inside it); anything else is a Dockerfile without context.

options:
  -f, --file PATH          Dockerfile: for a directory context a path from the current directory
                           (default CONTEXT/Dockerfile); for git and tarballs a path inside the context
  -t, --tag NAME[:TAG]     image to produce (required)
      --build-arg K[=V]    build argument (repeatable; a bare K takes K from the environment)
      --target STAGE       stage to build (default: the last)
      --secret SPEC        id=ID,src=PATH or id=ID,env=VAR (repeatable), for RUN --mount=type=secret
      --label K=V          label added to the image (repeatable)
      --cpus N --memory MiB --disk BYTES --network NAME   build VM resources
      --kernel ID          kernel of the build VM (default: the base image's)
      --no-cache           run every step (their snapshots still refresh the step cache)
      --keep-stages        keep the images of intermediate stages (kindling-intermediate/<build>:stage-<n>)
      --progress MODE      auto (tty on a terminal, else plain), tty (a live line per step), plain (a log),
                           json (one BuildEvent per line on stdout; kindling's own lines go to stderr)
      --planner HOST:PORT  planner address (default $KINDLING_PLANNER_ADDR or 127.0.0.1:50051)
      --fetcher HOST:PORT  fetcher to upload a context on stdin to
                           (default $KINDLING_FETCHER_ADDR or 127.0.0.1:50052)
      --tls-ca/--tls-cert/--tls-key PATH   TLS to the planner and the fetcher

${firebuildUsage}
Ctrl-C cancels the build.
`;

function pairs(values: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} "${value}": expected KEY=VALUE`);
    out[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return out;
}

export function parseSecret(spec: string): BuildSecret {
  const fields = pairs(spec.split(','), '--secret');
  if (!fields.id) throw new Error(`--secret "${spec}": needs id=ID`);
  if (fields.src ?? fields.source) return { id: fields.id, value: { $case: 'file', value: resolve(fields.src ?? fields.source!) } };
  if (fields.env) return { id: fields.id, value: { $case: 'env', value: fields.env } };
  return { id: fields.id, value: { $case: 'env', value: fields.id } };
}

// As docker's CLI and BuildKit tell a git context: a git transport, scp-like git@host:path, or an
// http(s) URL whose path ends in .git (a #ref:subdir may follow).
const GIT_CONTEXT = /^(git:\/\/|git\+(https?|ssh):\/\/|ssh:\/\/|git@|github\.com\/)|^https?:\/\/[^#]*\.git(#|$)/;

/** A CONTEXT other than "-" (stdin: stdinBuildSource) as the planner's BuildSource. */
export function buildSourceFor(context: string, dockerfile: string): BuildSource {
  if (GIT_CONTEXT.test(context)) {
    const url = context.startsWith('github.com/') ? `https://${context}` : context;
    return { source: { $case: 'gitUrl', value: url }, dockerfilePath: dockerfile };
  }
  if (/^https?:\/\//.test(context)) {
    if (/\.(tar|tar\.gz|tgz|tar\.zst|tzst)$/.test(context)) return { source: { $case: 'tarballUrl', value: context }, dockerfilePath: dockerfile };
    return { source: { $case: 'dockerfileUrl', value: context }, dockerfilePath: '' };
  }
  // With a local context docker reads -f relative to the current directory, not to the context.
  return { source: { $case: 'contextPath', value: resolve(context) }, dockerfilePath: dockerfile === '' ? '' : resolve(dockerfile) };
}

/** "-": an archive on stdin is uploaded and built as the context; anything else is a Dockerfile. */
export async function stdinBuildSource(
  input: AsyncIterable<Buffer | string>,
  dockerfile: string,
  upload: (archive: Extract<StdinContext, { kind: 'archive' }>) => Promise<string>,
): Promise<BuildSource> {
  const stdin = await readStdinContext(input);
  if (stdin.kind === 'dockerfile') return { source: { $case: 'dockerfile', value: stdin.text }, dockerfilePath: dockerfile };
  return { source: { $case: 'uploadId', value: await upload(stdin) }, dockerfilePath: dockerfile };
}

/** Uploads stdin's archive to the fetcher at address and returns its upload id. */
async function uploadStdin(archive: Extract<StdinContext, { kind: 'archive' }>, address: string, tls: TlsFiles, progress: ProgressRenderer): Promise<string> {
  let fetcher: FetcherServiceClient | undefined;
  try {
    fetcher = createServiceClient(FetcherServiceClient, address, tls);
    // With `< ctx.tar.gz` stdin is the file itself: announcing its size lets the fetcher catch a short read.
    const stat = fstatSync(0);
    const uploaded = await uploadContext(fetcher, archive.fileName, archive.chunks, stat.isFile() ? stat.size : 0);
    progress.note(`=> uploaded the ${archive.format} context from stdin (${uploaded.size} bytes) as ${uploaded.uploadId}`);
    return uploaded.uploadId;
  } catch (error) {
    // No cause: the planner's error handling would take the fetcher's status for its own.
    throw new Error(`uploading the context on stdin failed: ${describeCallFailure('fetcher', address, '--fetcher or KINDLING_FETCHER_ADDR', error)}`);
  } finally {
    fetcher?.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('build', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f', default: '' },
      tag: { type: 'string', short: 't' },
      'build-arg': { type: 'string', multiple: true },
      target: { type: 'string', default: '' },
      secret: { type: 'string', multiple: true },
      label: { type: 'string', multiple: true },
      cpus: { type: 'string' },
      memory: { type: 'string' },
      disk: { type: 'string' },
      network: { type: 'string', default: '' },
      kernel: { type: 'string', default: '' },
      'no-cache': { type: 'boolean', default: false },
      'keep-stages': { type: 'boolean', default: false },
      progress: { type: 'string', default: 'auto' },
      planner: { type: 'string', default: process.env.KINDLING_PLANNER_ADDR ?? '127.0.0.1:50051' },
      fetcher: { type: 'string', default: process.env.KINDLING_FETCHER_ADDR ?? '127.0.0.1:50052' },
      ...firebuildOptions,
      ...tlsOptions,
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const fail = (problem: string): number => {
    process.stderr.write(`kindling build: ${problem}\n${usage}`);
    return 2;
  };
  if (positionals.length !== 1 || !values.tag) return fail('needs one CONTEXT and --tag');
  const badNumber = notWholeNumber(values, ['cpus', 'memory', 'disk']);
  if (badNumber) return fail(badNumber);
  if (!isProgressMode(values.progress)) return fail(`--progress "${values.progress}": expected one of ${PROGRESS_MODES.join(', ')}`);
  const flags = resolveFirebuildFlags(values);
  if ('problem' in flags) return fail(flags.problem);
  const progress = progressRenderer(values.progress, process.stdout);
  const tls = tlsFilesOf(values);
  let opened: BuildServiceClient | undefined;
  try {
    const client = (opened = createServiceClient(BuildServiceClient, values.planner, tls));
    const context = positionals[0]!;
    const source =
      context === '-'
        ? await stdinBuildSource(process.stdin, flags.file, (archive) => uploadStdin(archive, values.fetcher, tls, progress))
        : buildSourceFor(context, flags.file);
    const response = await new Promise<CreateBuildResponse>((resolvePromise, reject) =>
      client.createBuild(
        {
          source,
          tag: values.tag!,
          buildArgs: parseBuildArgs(values['build-arg']),
          target: values.target,
          resources: {
            vcpus: Number(values.cpus ?? 0),
            memoryMib: Number(values.memory ?? 0),
            diskSizeBytes: values.disk ?? '0',
            network: flags.network,
            kernelId: values.kernel,
          },
          noCache: values['no-cache'],
          keepStages: values['keep-stages'],
          secrets: (values.secret ?? []).map(parseSecret),
          labels: pairs(values.label, '--label'),
        },
        (error, r) => (error ? reject(error) : resolvePromise(r)),
      ),
    );
    progress.note(`=> build ${response.buildId}${response.build?.traceId ? ` (trace ${response.build.traceId})` : ''}`);
    // Ctrl-C cancels the build; the events then run on to its end (CANCELLED).
    const cancel = (): void => {
      client.cancelBuild({ buildId: response.buildId, reason: 'interrupted by the kindling CLI' }, () => {});
    };
    process.once('SIGINT', cancel);
    try {
      const final = await followBuild(client, response.buildId, progress, new AbortController().signal);
      return final === BuildState.BUILD_STATE_SUCCEEDED ? 0 : 1;
    } finally {
      process.off('SIGINT', cancel);
    }
  } catch (error) {
    progress.close();
    process.stderr.write(`kindling build: ${describeCallFailure('planner', values.planner, '--planner or KINDLING_PLANNER_ADDR', error)}\n`);
    return 1;
  } finally {
    opened?.close();
  }
}
