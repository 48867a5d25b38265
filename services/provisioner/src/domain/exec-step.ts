import { InvalidArgumentError } from './errors.ts';

/** One RUN step as the planner hands it over, after ARG/ENV expansion. */
export interface ExecStep {
  /** Shell form: a single command line run through `shell`. */
  command?: string;
  /** Exec form: argv, run directly. Exactly one of command/argv is set. */
  argv?: string[];
  /** The step's SHELL; default ["/bin/sh", "-c"]. */
  shell?: string[];
  /** "KEY=value" pairs, in order; later keys win. */
  env: string[];
  /** Absolute working directory; created if missing. Default "/". */
  workdir?: string;
  /** USER: name, uid, name:group or uid:gid; empty runs as the SSH user. */
  user?: string;
  /** Kill the step after this many milliseconds (0 or undefined: no limit). */
  timeoutMs?: number;
  /** Run in the session's long-lived root shell (see GuestShell): not with env, user, workdir or a timeout. */
  reuseShell?: boolean;
}

export type ExecOutput = { stream: 'stdout' | 'stderr'; data: Buffer; at: Date };

/** Receives output as it arrives; a returned promise asks the producer to pause until it settles. */
export type ExecOutputSink = (output: ExecOutput) => void | Promise<void>;

export type ExecOutcome =
  | { kind: 'exited'; exitCode: number }
  /** signal: its name without "SIG", e.g. "KILL". */
  | { kind: 'signaled'; signal: string; coreDumped: boolean }
  | { kind: 'timed_out'; timeoutMs: number };

export const DEFAULT_SHELL = ['/bin/sh', '-c'];
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The argv a step runs, before any user switch. */
export function stepArgv(step: ExecStep): string[] {
  const hasCommand = step.command !== undefined;
  const hasArgv = step.argv !== undefined && step.argv.length > 0;
  if (hasCommand === hasArgv) {
    throw new InvalidArgumentError('a RUN step needs exactly one of command (shell form) or argv (exec form)');
  }
  const argv = hasArgv ? (step.argv as string[]) : [...(step.shell?.length ? step.shell : DEFAULT_SHELL), step.command as string];
  for (const arg of argv) assertNoNul(arg, 'argument');
  return argv;
}

/** Validated env as [key, value] pairs, last occurrence of a key winning, first position kept. */
export function stepEnv(env: string[]): Map<string, string> {
  const result = new Map<string, string>();
  for (const pair of env) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq <= 0 || !/^[^=\0]+$/.test(key)) {
      throw new InvalidArgumentError(`env entry "${pair.slice(0, 60)}" is not KEY=value with a non-empty key`);
    }
    const value = pair.slice(eq + 1);
    assertNoNul(value, `value of env ${key}`);
    result.set(key, value);
  }
  return result;
}

export function stepWorkdir(workdir: string | undefined): string {
  if (!workdir) return '/';
  if (!workdir.startsWith('/')) throw new InvalidArgumentError(`workdir "${workdir}" must be an absolute path`);
  assertNoNul(workdir, 'workdir');
  return workdir;
}

function assertNoNul(text: string, what: string): void {
  if (text.includes('\0')) throw new InvalidArgumentError(`${what} contains a NUL byte, which no process argument or environment can carry`);
}
