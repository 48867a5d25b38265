import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError, InternalError, UnavailableError } from '../../domain/errors.ts';

/** Where kindling's own plugins (kindling-tap) live in this checkout. */
export const KINDLING_PLUGIN_DIR = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  '../../../cni-plugins',
);
export const DEFAULT_CNI_BIN_DIRS = ['/opt/cni/bin', '/usr/lib/cni', KINDLING_PLUGIN_DIR];

/** Plugins kindling can stand in for when the upstream binary is not installed. */
const STAND_INS: Record<string, string> = { 'tc-redirect-tap': 'kindling-tap' };

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'VERSION';

export interface PluginInvocation {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  /** CNI_ARGS pairs, joined as K=V;K=V. */
  readonly args?: Record<string, string>;
  readonly binDirs: readonly string[];
  readonly config: Record<string, unknown>;
  /** Run the plugin inside this network namespace (path), e.g. a test's "host" netns; default: ours. */
  readonly runInNetns?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * A plugin reported an error per the spec ({code, msg, details} on stdout), or died without one.
 * Code 11 ("try again later") maps to UNAVAILABLE; everything else is INTERNAL to the caller.
 */
export class CniPluginError extends InternalError {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly cniCode: number,
    readonly cniMsg: string,
    readonly cniDetails = '',
  ) {
    super(
      `CNI plugin ${plugin} ${command} failed with code ${cniCode}: ${cniMsg}${cniDetails ? ` (${cniDetails})` : ''}`,
    );
  }
}

export class CniTryAgainError extends UnavailableError {}

async function isExecutable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Resolves a plugin type to its executable along binDirs (first match wins, as CNI_PATH is searched). */
export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type))
    throw new FailedPreconditionError(`CNI plugin type "${type}" is not a file name`);
  for (const candidate of [type, STAND_INS[type]]) {
    if (!candidate) continue;
    for (const dir of binDirs) {
      const file = path.join(dir, candidate);
      if (await isExecutable(file)) return file;
    }
  }
  throw new FailedPreconditionError(
    `CNI plugin "${type}" not found in ${binDirs.join(':')}: install containernetworking-plugins ` +
      `(apt-get install containernetworking-plugins) or put the plugin into one of those directories`,
  );
}

function pluginError(
  type: string,
  command: CniCommand,
  exitCode: number | null,
  stdout: string,
  stderr: string,
): Error {
  try {
    const parsed = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof parsed.code === 'number') {
      const msg = typeof parsed.msg === 'string' ? parsed.msg : '';
      const details = typeof parsed.details === 'string' ? parsed.details : '';
      if (parsed.code === 11)
        return new CniTryAgainError(`CNI plugin ${type} ${command}: ${msg} (try again later)`);
      return new CniPluginError(type, command, parsed.code, msg, details);
    }
  } catch {
    // not a spec error object: fall through to the raw output
  }
  const output = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join(' | ');
  return new CniPluginError(
    type,
    command,
    999,
    `exited with ${exitCode ?? 'a signal'}${output ? `: ${output}` : ' and no output'}`,
  );
}

/** Executes one plugin per the CNI spec: parameters in CNI_* variables, the config on stdin, the result on stdout. */
export async function invokePlugin(inv: PluginInvocation): Promise<unknown> {
  const type = String(inv.config.type);
  const file = await findPlugin(type, inv.binDirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_ARGS: Object.entries(inv.args ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(';'),
    CNI_PATH: inv.binDirs.join(':'),
  };
  const [cmd, argv] = inv.runInNetns ? ['nsenter', [`--net=${inv.runInNetns}`, '--', file]] : [file, []];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(cmd, argv, {
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        signal: inv.signal,
        timeout: inv.timeoutMs ?? 60_000,
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(JSON.stringify(inv.config));
    },
  );
  if (code !== 0) throw pluginError(type, inv.command, code, stdout, stderr);
  if (inv.command !== 'ADD' && inv.command !== 'VERSION') return undefined;
  try {
    return JSON.parse(stdout) as unknown;
  } catch {
    throw new CniPluginError(type, inv.command, 999, `printed no JSON result: ${stdout.slice(0, 200)}`);
  }
}
