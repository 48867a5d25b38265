/** Instructions into stages: ARGs before the first FROM, then each FROM and its commands. */
import { splitWhitespace } from './argument-splitting.ts';
import { parseCommand, type ArgCommand, type Command, type FromCommand } from './instructions.ts';
import type { InstructionSource } from './instruction-source.ts';
import { commandError, type Diagnostics } from './diagnostics.ts';
import { expandWord } from './shell-lexer.ts';
import type { Stage } from './stage-graph.ts';

/** Variables a FROM line uses that no global ARG declares (BuildKit's UndefinedArgInFrom). */
export function undeclaredInFrom(from: FromCommand, declared: ReadonlySet<string>, escapeToken: string): string[] {
  const names = new Set<string>();
  for (const word of [from.base, from.platform ?? '']) {
    if (!word.includes('$')) continue;
    try {
      for (const name of expandWord(word, new Map(), { escapeToken }).unmatched) if (!declared.has(name)) names.add(name);
    } catch {
      // reported when the FROM is expanded
    }
  }
  return [...names];
}

const JSON_LOOKING = /^\s*\[.*\]\s*$/s;

/** BuildKit's FromAsCasing and StageNameCasing lint rules, read from FROM as written. */
function fromCasing(command: FromCommand, diags: Diagnostics): void {
  const words = splitWhitespace(command.src.rest);
  if (words.length !== 3) return;
  const from = command.src.rawKeyword;
  const as = words[1] as string;
  const written = words[2] as string;
  // A FROM in mixed case is another rule's business (ConsistentInstructionCasing), as in BuildKit.
  const lower = from === from.toLowerCase();
  const upper = from === from.toUpperCase();
  if ((lower && as !== as.toLowerCase()) || (upper && !lower && as !== as.toUpperCase())) {
    diags.warn(command.src, 'FromAsCasing', `'${as}' and '${from}' keywords' casing do not match`);
  }
  if (written !== written.toLowerCase()) diags.warn(command.src, 'StageNameCasing', `Stage name '${written}' should be lowercase`);
}

/**
 * BuildKit's ConsistentInstructionCasing: the instructions of the stages (not the ARGs before the
 * first FROM) should all be upper or all lower case; the majority decides, ties go to upper case.
 */
export function checkInstructionCasing(stages: readonly Stage[], diags: Diagnostics): void {
  const keywords = stages.flatMap((s) => [s.from.src, ...s.commands.map((c) => c.src)]);
  const consistent = (k: string): boolean => k === k.toLowerCase() || k === k.toUpperCase();
  let lower = 0;
  let upper = 0;
  for (const src of keywords) {
    if (!consistent(src.rawKeyword)) continue;
    if (src.rawKeyword === src.rawKeyword.toLowerCase()) lower++;
    else upper++;
  }
  const majorityLower = lower > upper;
  for (const src of keywords) {
    const k = src.rawKeyword;
    const casing = majorityLower ? (k !== k.toLowerCase() ? 'lowercase' : '') : k !== k.toUpperCase() ? 'uppercase' : '';
    if (casing) diags.warn(src, 'ConsistentInstructionCasing', `Command '${k}' should match the case of the command majority (${casing})`);
  }
}

export function parseAll(instructions: readonly InstructionSource[], escapeToken: string, diags: Diagnostics): { metaArgs: ArgCommand[]; stages: Stage[] } {
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  for (const src of instructions) {
    if (src.emptyContinuationLine) diags.warn(src, 'NoEmptyContinuation', `${src.keyword}: empty continuation line inside the instruction (lines ${src.line}-${src.endLine}); Docker will reject this in a future release`);
    let command: Command;
    try {
      command = parseCommand(src, escapeToken);
    } catch (err) {
      commandError(diags, src, err);
      if (src.keyword === 'FROM') stages.push(placeholderStage(src, stages.length));
      continue;
    }
    if ((command.kind === 'RUN' || command.kind === 'CMD' || command.kind === 'ENTRYPOINT') && command.form === 'shell' && JSON_LOOKING.test(src.rest)) {
      diags.warn(src, 'InvalidJSONArguments', `${src.keyword}: the arguments look like a JSON array but are not valid JSON, so they run in the shell form: ${src.rest}`);
    }
    if (command.kind === 'MAINTAINER') diags.warn(src, 'MaintainerDeprecated', 'MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors="..." instead (kept as the label "maintainer")');
    if (command.kind === 'ONBUILD' && !['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'].includes(command.triggerKeyword)) {
      diags.warn(src, 'InvalidOnbuildTrigger', `ONBUILD: "${command.triggerKeyword}" is not an instruction; every build FROM this image will fail on this trigger`);
    }
    if (command.kind === 'FROM') fromCasing(command, diags);
    if (command.kind === 'FROM') {
      stages.push({ index: stages.length, name: command.stageName ?? '', from: command, commands: [], baseName: command.base, platform: command.platform ?? '', fromRefs: new Map(), deps: new Map() });
    } else if (stages.length === 0) {
      if (command.kind === 'ARG') metaArgs.push(command);
      else diags.error(src, 'InstructionBeforeFrom', `${src.keyword} comes before the first FROM: only ARG may precede FROM (no build stage in current context)`);
    } else (stages[stages.length - 1] as Stage).commands.push(command);
  }
  return { metaArgs, stages };
}

function placeholderStage(src: InstructionSource, index: number): Stage {
  const from: FromCommand = { kind: 'FROM', src, base: 'scratch' };
  return { index, name: '', from, commands: [], baseName: 'scratch', platform: '', fromRefs: new Map(), deps: new Map() };
}
