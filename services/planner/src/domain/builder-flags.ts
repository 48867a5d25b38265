/** The `--name=value` flags of an instruction, checked as BuildKit's BFlags does. */
export type FlagKind = 'bool' | 'string' | 'strings';

export class FlagError extends Error {
  override name = 'FlagError';
  constructor(
    message: string,
    readonly flag: string,
  ) {
    super(message);
  }
}

export interface ParsedFlags {
  bool(name: string): boolean;
  string(name: string): string | undefined;
  strings(name: string): string[];
  used: string[];
}

export function parseFlags(raw: string[], spec: Readonly<Record<string, FlagKind>>, keyword: string): ParsedFlags {
  const values = new Map<string, string[]>();
  for (const arg of raw) {
    if (!arg.startsWith('--')) throw new FlagError(`arg should start with -- : ${arg}`, arg);
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = spec[name];
    if (kind === undefined) {
      const known = Object.keys(spec).map((f) => `--${f}`);
      const hint = known.length === 0 ? `${keyword} takes no flags` : `${keyword} accepts ${known.join(', ')}`;
      throw new FlagError(`unknown flag: --${name} (${hint})`, name);
    }
    const previous = values.get(name);
    if (previous && kind !== 'strings') throw new FlagError(`duplicate flag specified: --${name}`, name);
    let stored: string;
    if (kind === 'bool') {
      if (value === '') throw new FlagError(`missing a value on flag: --${name}`, name);
      const lower = (value ?? '').toLowerCase();
      if (lower === 'true' || lower === '') stored = 'true';
      else if (lower === 'false') stored = 'false';
      else throw new FlagError(`expecting boolean value for flag --${name}, not: ${value}`, name);
    } else {
      if (value === undefined) throw new FlagError(`missing a value on flag: --${name}`, name);
      stored = value;
    }
    values.set(name, [...(previous ?? []), stored]);
  }
  return {
    bool: (name) => values.get(name)?.[0] === 'true',
    string: (name) => values.get(name)?.[0],
    strings: (name) => values.get(name) ?? [],
    used: [...values.keys()],
  };
}
