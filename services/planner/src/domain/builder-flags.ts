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
  readonly used: string[];
}

class FlagValues implements ParsedFlags {
  constructor(private readonly values: Map<string, string[]>) {}
  bool(name: string): boolean {
    return this.values.get(name)?.[0] === 'true';
  }
  string(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }
  strings(name: string): string[] {
    return this.values.get(name) ?? [];
  }
  get used(): string[] {
    return [...this.values.keys()];
  }
}

const NO_VALUES = new FlagValues(new Map());

export function parseFlags(raw: string[], spec: Readonly<Record<string, FlagKind>>, keyword: string): ParsedFlags {
  if (raw.length === 0) return NO_VALUES;
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
    if (previous) previous.push(stored);
    else values.set(name, [stored]);
  }
  return new FlagValues(values);
}
