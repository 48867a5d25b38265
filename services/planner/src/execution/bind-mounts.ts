/**
 * RUN --mount=type=bind in a microVM: the mount's files (from the build context, a stage or an image)
 * are copied into a private directory of the guest and bind-mounted on the target, read-only unless
 * `rw`. As in BuildKit, writes to an rw mount are discarded with the copy, and a target directory the
 * mount had to create is removed again, so neither lands in the committed image.
 */
import { FileType } from '@kindling/proto/gen/kindling/fetcher/v1/fetcher.ts';
import type { CopySource } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { FailedPreconditionError } from '@kindling/runtime';
import type { PlannedStep, RunMount } from '../domain/plan.ts';
import { imageFilesContext } from './image-files.ts';
import type { StepEnvironment } from './step-executor.ts';

type BindMount = Extract<RunMount, { type: 'bind' }>;

export const MOUNT_STAGING_ROOT = '/run/kindling-mounts';

// $1 staged copy, $2 target, $3 "ro"|"rw", $4 "file"|"dir". Prints the paths it is about to create,
// deepest first, one a line, so cleanup removes exactly those.
const MOUNT_SCRIPT = [
  'p="$2"; while [ ! -e "$p" ]; do printf \'%s\\n\' "$p"; p=$(dirname "$p"); done',
  'if [ "$4" = file ]; then mkdir -p "$(dirname "$2")" && { [ -e "$2" ] || : > "$2"; }; else mkdir -p "$2"; fi',
  'mount --bind "$1" "$2" || exit 1',
  'if [ "$3" = ro ]; then mount -o remount,bind,ro "$2" || { umount "$2"; exit 1; }; fi',
].join('\n');

/** Where the mount's files come from: the build context or the files of a stage/image uploaded to the fetcher. */
async function mountSource(env: StepEnvironment, step: PlannedStep, mount: BindMount): Promise<{ contextId: string; pattern: string; preserveOwnership: boolean }> {
  const relative = mount.source.replace(/^\/+/, '') || '.';
  if (mount.from === undefined) {
    if (env.contextId === '') throw new FailedPreconditionError(`line ${step.line}: RUN --mount=type=bind without from= reads the build context, but this build has only a Dockerfile`);
    return { contextId: env.contextId, pattern: relative, preserveOwnership: false };
  }
  const image = env.imageNamed(mount.from);
  const contextId = await imageFilesContext(env, image, [`/${relative === '.' ? '' : relative}`], env.signal);
  return { contextId, pattern: relative, preserveOwnership: true };
}

export async function prepareBindMount(
  env: StepEnvironment,
  step: PlannedStep,
  mount: BindMount,
  index: number,
  execAsRoot: (argv: string[]) => Promise<string>,
  /** Registers an undo step; they run in the reverse order of registration, even after a failure. */
  undo: (argv: string[]) => void,
): Promise<void> {
  const source = await mountSource(env, step, mount);
  const listed = await env.context.listFiles(source.contextId, [source.pattern], [], env.signal);
  const files = listed.sources.flatMap((s) => s.files);
  if (files.length === 0) throw new FailedPreconditionError(`line ${step.line}: RUN --mount=type=bind: source "${mount.source}" not found${mount.from === undefined ? ' in the build context' : ` in ${mount.from}`}`);
  const root = files.find((f) => f.path === f.matchRoot);
  const isFile = root !== undefined && root.type !== FileType.FILE_TYPE_DIRECTORY;
  const staging = `${MOUNT_STAGING_ROOT}/${step.index}-${index}`;
  const sources: CopySource[] = listed.sources.map((s) => ({ pattern: s.pattern, files: s.files }));
  undo(['rm', '-rf', staging]);
  await env.guest.putFiles(
    {
      target: env.target,
      contextId: source.contextId,
      sources,
      destination: isFile ? `${staging}/file` : `${staging}/`,
      workingDir: '/',
      chown: '',
      extractArchives: false,
      preserveOwnership: source.preserveOwnership,
      buildId: env.buildId,
      stepIndex: step.index,
    },
    env.signal,
  );
  const created = await execAsRoot(['/bin/sh', '-c', MOUNT_SCRIPT, 'sh', isFile ? `${staging}/file` : staging, mount.target, mount.readonly ? 'ro' : 'rw', isFile ? 'file' : 'dir']);
  const made = created.split('\n').filter(Boolean);
  // undone as: umount, the mount points it created (deepest first), the staged copy
  if (made.length > 0) undo(['rm', '-df', '--', ...made]);
  undo(['umount', mount.target]);
}
