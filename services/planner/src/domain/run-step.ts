/** RUN: mounts, network and security flags, heredocs, and the argv the build VM executes. */
import path from 'node:path/posix';
import { CommandError, type RunCommand } from './instructions.ts';
import { chompHeredoc, parseHeredocMarker } from './instruction-source.ts';
import type { InlineFile, RunMount, StepInput } from './plan.ts';
import { parseRunMount } from './run-mounts.ts';
import type { SourceRef } from './stage-graph.ts';
import { contextPattern } from './copy-step.ts';
import type { PlannedAction, StepScope } from './step-scope.ts';

/** `type=cache,target=/x,...`: a mount as BuildKit's flag syntax spells it. */
function describeMount(mount: RunMount): string {
  let out = '';
  for (const [k, v] of Object.entries(mount)) out += `${out ? ',' : ''}${k}=${typeof v === 'number' && k === 'mode' ? '0' + v.toString(8) : String(v)}`;
  return out;
}

export function planRun(command: RunCommand, refs: readonly SourceRef[], scope: StepScope): PlannedAction {
  const workdir = scope.workdir;
  let sshIndex = 0;
  const inputs: StepInput[] = [];
  let refIndex = 0;
  const mounts: RunMount[] = command.mounts.map((value) => {
    const mount = scope.checked(() => parseRunMount(value, (w) => scope.expand(w), workdir, sshIndex));
    if (mount.type === 'ssh') sshIndex++;
    if (mount.type === 'secret') scope.secret(mount.id);
    if ((mount.type === 'bind' || mount.type === 'cache') && mount.from !== undefined) {
      const ref = refs[refIndex++];
      if (ref?.kind === 'stage') {
        mount.from = `stage:${ref.index}`;
        inputs.push(scope.stageInput(ref.index));
      } else if (ref?.kind === 'image') {
        inputs.push(scope.imageInput(ref.reference, command.src.line));
      }
    } else if (mount.type === 'bind') {
      inputs.push(scope.contextInput(contextPattern(mount.source)));
    }
    return mount;
  });
  const network = command.network ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host') throw new CommandError(`unsupported network mode "${network}" (use default, none or host)`);
  const security = command.security ?? 'sandbox';
  if (security !== 'sandbox' && security !== 'insecure') throw new CommandError(`unsupported security mode "${security}" (use sandbox or insecure)`);

  let args = command.args;
  const files: InlineFile[] = [];
  if (command.heredocs.length > 0) {
    const first = command.heredocs[0] as (typeof command.heredocs)[number];
    if (args.length === 1 && parseHeredocMarker(args[0] as string)) {
      const data = first.chomp ? chompHeredoc(first.content) : first.content;
      if (data.startsWith('#!')) {
        const file = path.join('/dev/pipes/', first.name);
        files.push({ name: first.name, path: file, content: data, mode: 0o755 });
        args = [file];
      } else args = [data];
    } else {
      let full = args[0] ?? '';
      for (const doc of command.heredocs) full += '\n' + doc.content + doc.name;
      args = [full];
    }
  }
  const argv = command.form === 'shell' ? scope.shellFor(args) : [...args];
  let flags = '';
  for (const m of mounts) flags += `--mount=${describeMount(m)} `;
  if (network !== 'default') flags += `--network=${network} `;
  if (security !== 'sandbox') flags += `--security=${security} `;
  const heredocs = command.heredocs.map((h) => ({ name: h.name, content: h.content, stripTabs: h.chomp, quoted: !h.expand }));
  return {
    expanded: `RUN ${flags}${JSON.stringify(argv)}`,
    action: { kind: 'run', argv, form: command.form, files, mounts, heredocs, network, security },
    inputs,
    extra: files.map((f) => `${f.path}\0${f.mode}\0${f.content}`).join('\0'),
  };
}
