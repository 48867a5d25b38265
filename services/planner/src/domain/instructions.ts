/**
 * Typed, not yet expanded instructions: the argument shapes and checks of BuildKit's
 * instructions package. Variable expansion happens later, per stage, in stage-dispatch.ts.
 */
import { ArgumentSyntaxError, NOT_STRING_ARRAY, parseJsonArray, parseNameValue, splitKeepingQuotes, splitWhitespace, type KeyValueWord } from './argument-splitting.ts';
import { FlagError, parseFlags, type FlagKind, type ParsedFlags } from './builder-flags.ts';
import { parseGoDuration } from './go-duration.ts';
import { chompHeredoc, parseHeredocMarker, splitCommand, type HeredocBody, type InstructionSource } from './instruction-source.ts';

export type Form = 'shell' | 'exec';

interface Base {
  src: InstructionSource;
}
export interface FromCommand extends Base { kind: 'FROM'; base: string; stageName?: string; platform?: string }
export interface ArgCommand extends Base { kind: 'ARG'; args: { key: string; value?: string }[] }
export interface EnvCommand extends Base { kind: 'ENV' | 'LABEL'; pairs: KeyValueWord[] }
export interface MaintainerCommand extends Base { kind: 'MAINTAINER'; maintainer: string }
export interface RunCommand extends Base {
  kind: 'RUN';
  form: Form;
  args: string[];
  heredocs: HeredocBody[];
  mounts: string[];
  network?: string;
  security?: string;
}
export interface CmdCommand extends Base { kind: 'CMD' | 'ENTRYPOINT'; form: Form; args: string[] }
export interface ShellCommand extends Base { kind: 'SHELL'; shell: string[] }
export interface InlineSource { name: string; content: string; expand: boolean }
export interface CopyCommand extends Base {
  kind: 'COPY' | 'ADD';
  form: Form;
  sources: string[];
  inline: InlineSource[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
}
export interface SingleValueCommand extends Base { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL'; value: string }
export interface ListCommand extends Base { kind: 'EXPOSE' | 'VOLUME'; values: string[] }
export interface HealthcheckCommand extends Base {
  kind: 'HEALTHCHECK';
  test: string[];
  intervalNs: number;
  timeoutNs: number;
  startPeriodNs: number;
  startIntervalNs: number;
  retries: number;
}
export interface OnbuildCommand extends Base { kind: 'ONBUILD'; expression: string; triggerKeyword: string }

export type Command =
  | FromCommand | ArgCommand | EnvCommand | MaintainerCommand | RunCommand | CmdCommand | ShellCommand
  | CopyCommand | SingleValueCommand | ListCommand | HealthcheckCommand | OnbuildCommand;

export const INSTRUCTIONS = ['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** A Dockerfile author's mistake in one instruction; `column` points at the offending part when known. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    message: string,
    readonly column?: number,
    /** Stable rule id for the diagnostic. */
    readonly rule = 'InvalidInstruction',
  ) {
    super(message);
  }
}

const NO_FLAGS: Record<string, FlagKind> = {};
const FLAG_SPECS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'strings', unpack: 'bool' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};
const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function flagsOf(src: InstructionSource, keyword = src.keyword): ParsedFlags {
  try {
    return parseFlags(src.flags, FLAG_SPECS[keyword] ?? NO_FLAGS, keyword);
  } catch (err) {
    if (err instanceof FlagError) {
      const at = src.original.indexOf(`--${err.flag}`);
      throw new CommandError(err.message, at >= 0 ? src.column + at : undefined, 'InvalidFlag');
    }
    throw err;
  }
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array is the exec form, anything else the shell form. */
function maybeJson(rest: string): { form: Form; args: string[] } {
  if (rest === '') return { form: 'shell', args: [] };
  const json = parseJsonArray(rest);
  if (json) return { form: 'exec', args: json };
  return { form: 'shell', args: [rest] };
}

/** ADD, COPY, VOLUME: a JSON array, or whitespace-separated words (quotes are NOT grouping here). */
function maybeJsonList(rest: string): { form: Form; args: string[] } {
  const json = parseJsonArray(rest);
  if (json) return { form: 'exec', args: json };
  return { form: 'shell', args: splitWhitespace(rest) };
}

const atLeastOne = (k: string): CommandError => new CommandError(`${k} requires at least one argument`);
const exactlyOne = (k: string): CommandError => new CommandError(`${k} requires exactly one argument`);

function parseDuration(flags: ParsedFlags, name: string): number {
  const text = flags.string(name);
  if (text === undefined || text === '') return 0;
  let ns: number;
  try {
    ns = parseGoDuration(text);
  } catch (err) {
    throw new CommandError(`--${name}=${text}: ${(err as Error).message} (write it like 30s, 1m30s or 500ms)`);
  }
  if (ns === 0) return 0;
  if (ns < 1e6) throw new CommandError(`Interval "${name}" cannot be less than 1ms`);
  return ns;
}

function parseHealthcheck(src: InstructionSource): HealthcheckCommand {
  const rest = src.rest;
  const sep = rest.search(/\s/);
  const type = (sep < 0 ? rest : rest.slice(0, sep)).toUpperCase();
  const after = sep < 0 ? '' : rest.slice(sep).trimStart();
  if (type === '') throw atLeastOne('HEALTHCHECK');
  if (type === 'NONE') {
    if (after !== '') throw new CommandError('HEALTHCHECK NONE takes no arguments');
    flagsOf(src);
    return { kind: 'HEALTHCHECK', src, test: ['NONE'], intervalNs: 0, timeoutNs: 0, startPeriodNs: 0, startIntervalNs: 0, retries: 0 };
  }
  const flags = flagsOf(src);
  if (type !== 'CMD') throw new CommandError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`);
  const { form, args } = maybeJson(after);
  if (args.length === 0) throw new CommandError('Missing command after HEALTHCHECK CMD');
  const retriesText = flags.string('retries');
  let retries = 0;
  if (retriesText !== undefined && retriesText !== '') {
    if (!/^[+-]?\d+$/.test(retriesText)) throw new CommandError(`--retries=${retriesText}: not a whole number`);
    retries = Number(retriesText);
    if (retries < 0) throw new CommandError(`--retries cannot be negative (${retries})`);
  }
  return {
    kind: 'HEALTHCHECK',
    src,
    test: [form === 'exec' ? 'CMD' : 'CMD-SHELL', ...args],
    intervalNs: parseDuration(flags, 'interval'),
    timeoutNs: parseDuration(flags, 'timeout'),
    startPeriodNs: parseDuration(flags, 'start-period'),
    startIntervalNs: parseDuration(flags, 'start-interval'),
    retries,
  };
}

function parseCopy(src: InstructionSource, kind: 'COPY' | 'ADD'): CopyCommand {
  const { form, args } = maybeJsonList(src.rest);
  if (args.length < 2) {
    throw new CommandError(`${kind} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  const flags = flagsOf(src);
  const dest = args[args.length - 1] as string;
  if (parseHeredocMarker(dest)) throw new CommandError(`${kind} cannot accept a heredoc as a destination`);
  const byName = new Map(src.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inline: InlineSource[] = [];
  for (const arg of args.slice(0, -1)) {
    const marker = parseHeredocMarker(arg);
    if (marker) {
      const body = byName.get(marker.name)?.content ?? '';
      inline.push({ name: marker.name, content: marker.chomp ? chompHeredoc(body) : body, expand: marker.expand });
    } else sources.push(arg);
  }
  const command: CopyCommand = { kind, src, form, sources, inline, dest, link: flags.bool('link'), parents: flags.bool('parents'), exclude: flags.strings('exclude'), keepGitDir: flags.bool('keep-git-dir') };
  const from = flags.string('from');
  if (from !== undefined) command.from = from;
  const chown = flags.string('chown');
  if (chown !== undefined) command.chown = chown;
  const chmod = flags.string('chmod');
  if (chmod !== undefined) command.chmod = chmod;
  const checksum = flags.string('checksum');
  if (checksum !== undefined) command.checksum = checksum;
  if (flags.used.includes('unpack')) command.unpack = flags.bool('unpack');
  return command;
}

function parseFrom(src: InstructionSource): FromCommand {
  const args = splitWhitespace(src.rest);
  let stageName: string | undefined;
  if (args.length === 3 && (args[1] as string).toLowerCase() === 'as') {
    stageName = (args[2] as string).toLowerCase();
    if (!VALID_STAGE_NAME.test(stageName)) {
      throw new CommandError(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw new CommandError('FROM requires either one or three arguments: FROM <image> [AS <name>] (e.g. FROM debian:12, FROM scratch, FROM build)');
  }
  const flags = flagsOf(src);
  const command: FromCommand = { kind: 'FROM', src, base: args[0] as string };
  if (stageName !== undefined) command.stageName = stageName;
  const platform = flags.string('platform');
  if (platform !== undefined) command.platform = platform;
  return command;
}

function parseOnbuild(src: InstructionSource): OnbuildCommand {
  if (src.rest === '') throw atLeastOne('ONBUILD');
  flagsOf(src);
  const trigger = splitCommand(src.rest).keyword.toUpperCase();
  if (trigger === 'ONBUILD') throw new CommandError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new CommandError(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = src.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const doc of src.heredocs) expression += '\n' + doc.content + doc.name;
  return { kind: 'ONBUILD', src, expression, triggerKeyword: trigger };
}

function parseRun(src: InstructionSource): RunCommand {
  const flags = flagsOf(src);
  const { form, args } = maybeJson(src.rest);
  const command: RunCommand = { kind: 'RUN', src, form, args, heredocs: src.heredocs, mounts: flags.strings('mount') };
  if (src.heredocs.length > 0 && form === 'exec') throw new CommandError('RUN cannot combine heredocs with the JSON (exec) form; use the shell form');
  const network = flags.string('network');
  if (network !== undefined) command.network = network;
  const security = flags.string('security');
  if (security !== undefined) command.security = security;
  return command;
}

function parseInner(src: InstructionSource, escapeToken: string): Command {
  const k = src.keyword;
  switch (k) {
    case 'FROM':
      return parseFrom(src);
    case 'ARG': {
      const words = splitKeepingQuotes(src.rest, escapeToken);
      if (words.length === 0) throw atLeastOne('ARG');
      flagsOf(src);
      return {
        kind: 'ARG',
        src,
        args: words.map((word) => {
          const eq = word.indexOf('=');
          if (eq < 0) return { key: word };
          if (eq === 0) throw new CommandError('ARG names can not be blank');
          return { key: word.slice(0, eq), value: word.slice(eq + 1) };
        }),
      };
    }
    case 'ENV':
    case 'LABEL': {
      const pairs = parseNameValue(src.rest, k, escapeToken);
      flagsOf(src);
      if (pairs.length === 0) throw atLeastOne(k);
      if (pairs.some((p) => p.key === '')) throw new CommandError(`${k} names can not be blank`);
      return { kind: k, src, pairs };
    }
    case 'MAINTAINER':
      if (src.rest === '') throw exactlyOne(k);
      flagsOf(src);
      return { kind: k, src, maintainer: src.rest };
    case 'RUN':
      return parseRun(src);
    case 'CMD':
    case 'ENTRYPOINT': {
      flagsOf(src);
      return { kind: k, src, ...maybeJson(src.rest) };
    }
    case 'SHELL': {
      flagsOf(src);
      const { form, args } = maybeJson(src.rest);
      if (args.length === 0) throw atLeastOne('SHELL');
      if (form !== 'exec') throw new CommandError(`SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/bash", "-c"]`, undefined, 'InvalidJSONArguments');
      return { kind: k, src, shell: args };
    }
    case 'COPY':
    case 'ADD':
      return parseCopy(src, k);
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      if (src.rest === '') throw exactlyOne(k);
      flagsOf(src);
      return { kind: k, src, value: src.rest };
    case 'EXPOSE': {
      const values = splitWhitespace(src.rest);
      if (values.length === 0) throw atLeastOne(k);
      flagsOf(src);
      return { kind: k, src, values: values.sort() };
    }
    case 'VOLUME': {
      const { args } = maybeJsonList(src.rest);
      if (args.length === 0) throw atLeastOne(k);
      flagsOf(src);
      const values = args.map((v) => v.trim());
      if (values.some((v) => v === '')) throw new CommandError('VOLUME specified can not be an empty string');
      return { kind: k, src, values };
    }
    case 'HEALTHCHECK':
      return parseHealthcheck(src);
    case 'ONBUILD':
      return parseOnbuild(src);
    default:
      throw new CommandError(unknownInstructionMessage(src.rawKeyword), undefined, 'UnknownInstruction');
  }
}

/** Parses one instruction; throws CommandError with BuildKit's wording (plus a hint where it helps). */
export function parseCommand(src: InstructionSource, escapeToken: string): Command {
  try {
    return parseInner(src, escapeToken);
  } catch (err) {
    if (err instanceof ArgumentSyntaxError) throw new CommandError(err.message, undefined, err.message === NOT_STRING_ARRAY ? 'InvalidJSONArguments' : 'InvalidInstruction');
    throw err;
  }
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

export function unknownInstructionMessage(keyword: string): string {
  let best = '';
  let bestDistance = 3;
  for (const known of INSTRUCTIONS) {
    const d = editDistance(keyword.toUpperCase(), known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return `unknown instruction: ${keyword}${best ? ` (did you mean ${best}?)` : ''}`;
}
