/**
 * Executes one planned step inside the build VM through the provisioner: RUN as the step's USER in its
 * WORKDIR with its ENV (mounts emulated where a VM allows it), ADD/COPY from the fetcher, WORKDIR
 * created. Steps that only change metadata run nothing.
 */
import { LogStream } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { CopySource, ExecRequest, ExitStatus, SshTarget } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { FailedPreconditionError } from '@kindling/runtime';
import type { InlineFile, PlannedStep, RunMount, StepAction } from '../domain/plan.ts';
import type { BuildContextSource, BuildGuest, BuildVmHost } from '../ports/build-services.ts';
import { prepareBindMount } from './bind-mounts.ts';
import { stageLargeFiles, type GuestTransferDisk } from './transfer-staging.ts';
import { copySourceContext, gitSources } from './image-files.ts';

export interface StepEnvironment {
  readonly buildId: string;
  readonly target: SshTarget;
  readonly contextId: string;
  readonly secrets: ReadonlyMap<string, Buffer>;
  readonly guest: BuildGuest;
  readonly context: BuildContextSource;
  /** The vmm holding the stage images: COPY --from and RUN --mount=type=bind,from= read files from it. */
  readonly vmHost: BuildVmHost;
  /** Committed images of the stages built so far (stage index → "name:tag"). */
  readonly stageImages: ReadonlyMap<number, string>;
  /** The vmm image a --from / from= names: a stage (name or index) built so far, or an image. */
  imageNamed(reference: string): string;
  /** The VM's transfer disk, where COPY puts its large files; absent: all through SSH. */
  readonly transferDisk?: GuestTransferDisk;
  /** Something went wrong that the step works around (it still succeeds). */
  warn(message: string, error: unknown): void;
  readonly signal: AbortSignal;
  /** Output of the step's commands, as it arrives. */
  onOutput(stream: LogStream, data: Uint8Array): void;
}

/** Thrown when a RUN exits non-zero: the build fails with its exit code. */
export class StepCommandFailed extends Error {
  constructor(
    readonly exit: ExitStatus,
    readonly command: string,
  ) {
    super(
      exit.timedOut
        ? `${command} timed out`
        : exit.exitCode !== undefined
          ? `${command} returned a non-zero code: ${exit.exitCode}`
          : `${command} was killed by signal ${exit.signal}`,
    );
  }
}

type RunAction = Extract<StepAction, { kind: 'run' }>;
type CopyAction = Extract<StepAction, { kind: 'copy' }>;

function unsupported(step: PlannedStep, what: string): never {
  throw new FailedPreconditionError(`line ${step.line}: ${step.instruction}: ${what} is not supported by kindling yet`);
}

/** Runs argv as root in /, failing the step on a non-zero exit; resolves with its stdout. */
async function execAsRoot(env: StepEnvironment, step: PlannedStep, argv: string[], extraEnv: string[] = []): Promise<string> {
  const stdout: Uint8Array[] = [];
  const request: ExecRequest = {
    target: env.target,
    command: { $case: 'argv', value: { argv } },
    env: extraEnv,
    user: '',
    workingDir: '/',
    buildId: env.buildId,
    stepIndex: step.index, reuseShell: false,
  };
  const exit = await env.guest.exec(
    request,
    (chunk) => (chunk.stream === LogStream.LOG_STREAM_STDOUT ? stdout.push(chunk.data) : env.onOutput(chunk.stream, chunk.data)),
    env.signal,
  );
  if (exit.exitCode !== 0) throw new StepCommandFailed(exit, `preparing ${step.instruction} (${argv.join(' ')})`);
  return Buffer.concat(stdout).toString('utf8');
}

// The temporary file is made private before any byte lands in it (secrets), and the content
// arrives in env values of at most 16 Ki code points (<= 64 KiB): one execve string may not pass 128 KiB.
const writeFileScript =
  'mkdir -p "$(dirname "$1")" && rm -f "$1.kindling-tmp" && (umask 077 && : > "$1.kindling-tmp") && i=0 && ' +
  'while [ "$i" -lt "$4" ]; do eval "printf %s \\"\\$KINDLING_FILE_CONTENT_$i\\"" >> "$1.kindling-tmp" || exit 1; i=$((i + 1)); done && ' +
  'chmod "$2" "$1.kindling-tmp" && if [ -n "$3" ]; then chown "$3" "$1.kindling-tmp"; fi && mv -f "$1.kindling-tmp" "$1"';
const CONTENT_CHUNK_CODE_POINTS = 16 * 1024;

/** Writes a file in the guest from bytes we hold (heredocs, secrets): env values arrive byte-exact. */
async function writeGuestFile(env: StepEnvironment, step: PlannedStep, path: string, content: string, mode: number, owner = ''): Promise<void> {
  const codePoints = Array.from(content);
  const chunks: string[] = [];
  for (let at = 0; at < codePoints.length; at += CONTENT_CHUNK_CODE_POINTS) {
    chunks.push(`KINDLING_FILE_CONTENT_${chunks.length}=${codePoints.slice(at, at + CONTENT_CHUNK_CODE_POINTS).join('')}`);
  }
  await execAsRoot(env, step, ['/bin/sh', '-c', writeFileScript, 'sh', path, mode.toString(8), owner, String(chunks.length)], chunks);
}

interface PreparedMounts {
  env: string[];
  cleanup: string[][];
}

/** Fills `prepared` as it goes, so a mount that fails still leaves the earlier ones to clean up. */
async function prepareMounts(env: StepEnvironment, step: PlannedStep, mounts: RunMount[], prepared: PreparedMounts): Promise<void> {
  for (const mount of mounts) {
    switch (mount.type) {
      case 'secret': {
        const value = env.secrets.get(mount.id);
        if (value === undefined) {
          if (mount.required) throw new FailedPreconditionError(`line ${step.line}: RUN needs secret "${mount.id}"; pass it with the build's secrets`);
          continue;
        }
        if (mount.env) prepared.env.push(`${mount.env}=${value.toString()}`);
        if (mount.target || !mount.env) {
          const path = mount.target ?? `/run/secrets/${mount.id}`;
          await writeGuestFile(env, step, path, value.toString(), mount.mode, `${mount.uid}:${mount.gid}`);
          prepared.cleanup.push(['rm', '-f', path]);
        }
        break;
      }
      case 'cache':
      case 'tmpfs':
        // A tmpfs keeps the mount's contents out of the committed image, as Docker keeps cache mounts out.
        await execAsRoot(env, step, ['/bin/sh', '-c', 'mkdir -p "$1" && mount -t tmpfs kindling-mount "$1"', 'sh', mount.target]);
        prepared.cleanup.push(['umount', mount.target]);
        break;
      case 'bind': {
        await prepareBindMount(env, step, mount, mounts.indexOf(mount), (argv) => execAsRoot(env, step, argv), (argv) => prepared.cleanup.push(argv));
        break;
      }
      case 'ssh':
        if (mount.required) unsupported(step, 'RUN --mount=type=ssh');
        break;
    }
  }
}

async function runCommand(env: StepEnvironment, step: PlannedStep, action: RunAction): Promise<void> {
  for (const file of action.files) await writeGuestFile(env, step, file.path, file.content, file.mode);
  const mounts: PreparedMounts = { env: [], cleanup: [] };
  try {
    await prepareMounts(env, step, action.mounts, mounts);
    const argv = action.network === 'none' ? ['unshare', '--net', '--', ...action.argv] : action.argv;
    const request: ExecRequest = {
      target: env.target,
      command: { $case: 'argv', value: { argv } },
      env: [...step.context.env, ...mounts.env],
      user: step.context.user,
      workingDir: step.context.workdir,
      buildId: env.buildId,
      stepIndex: step.index, reuseShell: false,
    };
    const exit = await env.guest.exec(request, (chunk) => env.onOutput(chunk.stream, chunk.data), env.signal);
    if (exit.exitCode !== 0) throw new StepCommandFailed(exit, `RUN ${action.form === 'exec' ? JSON.stringify(action.argv) : action.argv.at(-1)}`);
  } finally {
    for (const argv of mounts.cleanup.reverse()) await execAsRoot({ ...env, signal: new AbortController().signal }, step, argv).catch(() => {});
  }
}

/** The planner already resolved the heredoc's file against the destination (dest/ + name, or dest). */
function inlineDestination(_destination: string, file: InlineFile): string {
  return file.path;
}

async function copyFiles(env: StepEnvironment, step: PlannedStep, action: CopyAction): Promise<void> {
  const batches: { contextId: string; sources: CopySource[]; preserveOwnership: boolean }[] = [];
  if (action.sources.length > 0) {
    const { contextId, patterns, fromImage } = await copySourceContext(env, step, action, env.signal);
    // With --parents the fetcher gives every file its pivot as match root, so the provisioner keeps
    // each file's path below it at the destination (as BuildKit's COPY --parents does).
    const listed = await env.context.listFiles(contextId, patterns, action.exclude, env.signal, { parents: action.parents });
    // A wildcard that matched nothing copies nothing, as in BuildKit (AllowEmptyWildcard).
    const sources = listed.sources.filter((s) => s.files.length > 0).map((s) => ({ pattern: s.pattern, files: s.files }));
    // files from a stage or image keep their owners, as BuildKit copies them; context files become 0:0
    batches.push({ contextId, sources, preserveOwnership: fromImage });
  }
  const urls: CopySource[] = [];
  for (const { url, checksum } of action.urls) urls.push({ pattern: url, files: [await env.context.fetchUrl(url, checksum ?? '', env.signal)] });
  if (urls.length > 0) batches.push({ contextId: env.contextId, sources: urls, preserveOwnership: false });
  for (const git of action.git) batches.push({ ...(await gitSources(env.context, step, git, env.signal)), preserveOwnership: false });
  const sourceCount = batches.reduce((n, b) => n + b.sources.length, 0);
  for (const batch of batches) {
    if (batch.sources.length === 0) continue;
    // ADD unpacks archives as it streams them: only a plain copy reads its files from the disk
    const transferDisk = action.unpackArchives ? undefined : await stageLargeFiles(env, env.transferDisk, batch.sources, env.signal);
    await env.guest.putFiles(
      {
        target: env.target,
        contextId: batch.contextId,
        sources: batch.sources,
        // several batches share one destination, which several sources make a directory
        destination: sourceCount > 1 && !action.destination.endsWith('/') ? `${action.destination}/` : action.destination,
        workingDir: step.context.workdir,
        chown: action.chown ?? '',
        ...(action.chmod === undefined ? {} : { chmod: action.chmod }),
        extractArchives: action.unpackArchives,
        preserveOwnership: batch.preserveOwnership,
        transferDisk,
        buildId: env.buildId,
        stepIndex: step.index,
      },
      env.signal,
    );
  }
  for (const file of action.inline) {
    await writeGuestFile(env, step, inlineDestination(action.destination, file), file.content, action.chmod ?? file.mode, action.chown ?? '');
  }
}

export async function executeStep(env: StepEnvironment, step: PlannedStep): Promise<'ran' | 'metadata'> {
  const action = step.action;
  switch (action.kind) {
    case 'run':
      await runCommand(env, step, action);
      return 'ran';
    case 'copy':
      await copyFiles(env, step, action);
      return 'ran';
    case 'workdir': {
      const owner = action.createdWith.user;
      await execAsRoot(env, step, ['/bin/sh', '-c', 'mkdir -p "$1" && if [ -n "$2" ]; then chown "$2" "$1"; fi', 'sh', action.path, owner]);
      return 'ran';
    }
    case 'config':
      return 'metadata';
  }
}
