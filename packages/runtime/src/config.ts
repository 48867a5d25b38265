/**
 * Configuration from flags and environment, validated at start. Each setting `fooBar` of service `vmm`
 * is read from `--foo-bar` (or `--foo-bar=value`), else `KINDLING_VMM_FOO_BAR`, else its default. A bad
 * value throws ConfigError naming the flag and the variable; runMain turns that into exit code 2.
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Thrown by loadConfig for --help or -h; runMain prints the usage and exits 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
  constructor(readonly usage: string) {
    super('help requested');
  }
}

export interface Setting<T> {
  readonly description: string;
  readonly default?: T;
  /** Boolean flags may be given without a value. */
  readonly isFlag?: boolean;
  parse(raw: string): T;
  /** How --help shows the default, in the form parse accepts (default: String). */
  show?(value: T): string;
}

type Schema = Record<string, Setting<unknown>>;
export type ConfigOf<S extends Schema> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envName(prefix: string, key: string): string {
  return `${prefix}_${kebab(key).replace(/-/g, '_').toUpperCase()}`;
}

export function loadConfig<S extends Schema>(
  prefix: string,
  schema: S,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(configUsage(prefix, schema));
  const flags = new Map<string, string>();
  const known = new Map(Object.keys(schema).map((key) => [kebab(key), key]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"; settings are given as --name=value`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const key = known.get(name);
    if (key === undefined) {
      throw new ConfigError(`unknown setting --${name}; known: ${[...known.keys()].map((k) => `--${k}`).join(', ')}`);
    }
    if (inline !== undefined) flags.set(key, inline);
    else if (schema[key]!.isFlag && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) flags.set(key, 'true');
    else if (argv[i + 1] !== undefined) flags.set(key, argv[++i]!);
    else throw new ConfigError(`setting --${name} needs a value`);
  }
  const config: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(schema)) {
    const variable = envName(prefix, key);
    const raw = flags.get(key) ?? env[variable];
    if (raw === undefined) {
      if (!('default' in setting)) throw new ConfigError(`setting --${kebab(key)} (${variable}) is required: ${setting.description}`);
      config[key] = setting.default;
      continue;
    }
    try {
      config[key] = setting.parse(raw);
    } catch (error) {
      throw new ConfigError(`setting --${kebab(key)} (${variable}) has a bad value "${raw}": ${(error as Error).message}`);
    }
  }
  return config as ConfigOf<S>;
}

/** What --help prints: every setting with its flag, environment variable and default. */
export function configUsage(prefix: string, schema: Schema): string {
  const service = prefix.replace(/^KINDLING_/, '').toLowerCase();
  const lines = [`usage: ${service} [--setting=value]...`, '', 'settings (flag, environment variable, default):'];
  for (const [key, s] of Object.entries(schema)) {
    const shown = s.default === undefined ? '' : s.show ? s.show(s.default) : String(s.default);
    const fallback = shown === '' ? '' : `; default ${shown}`;
    lines.push(`  --${kebab(key)}`, `      ${s.description} (${envName(prefix, key)}${fallback})`);
  }
  return `${lines.join('\n')}\n`;
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
};

export const setting = {
  string(description: string, defaultValue?: string): Setting<string> {
    return { description, ...(defaultValue === undefined ? {} : { default: defaultValue }), parse: (raw) => raw };
  },
  optionalString(description: string): Setting<string | undefined> {
    return { description, default: undefined, parse: (raw) => (raw === '' ? undefined : raw) };
  },
  integer(description: string, defaultValue: number | undefined, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Setting<number> {
    return {
      description,
      ...(defaultValue === undefined ? {} : { default: defaultValue }),
      parse(raw) {
        if (!/^-?\d+$/.test(raw.trim())) throw new Error('expected an integer');
        const value = Number(raw);
        if (value < min || value > max) throw new Error(`expected an integer from ${min} to ${max}`);
        return value;
      },
    };
  },
  port(description: string, defaultValue: number): Setting<number> {
    return setting.integer(description, defaultValue, 0, 65535);
  },
  boolean(description: string, defaultValue = false): Setting<boolean> {
    return {
      description,
      default: defaultValue,
      isFlag: true,
      parse(raw) {
        if (/^(1|true|yes|on)$/i.test(raw)) return true;
        if (/^(0|false|no|off)$/i.test(raw)) return false;
        throw new Error('expected true or false');
      },
    };
  },
  oneOf<const T extends string>(description: string, choices: readonly T[], defaultValue: T): Setting<T> {
    return {
      description,
      default: defaultValue,
      parse(raw) {
        if (!(choices as readonly string[]).includes(raw)) throw new Error(`expected one of ${choices.join(', ')}`);
        return raw as T;
      },
    };
  },
  /** Durations like "500ms", "30s", "5m", "1h". */
  durationMs(description: string, defaultMs: number): Setting<number> {
    return {
      description,
      default: defaultMs,
      parse(raw) {
        const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw.trim());
        if (!match) throw new Error('expected a duration such as 500ms, 30s, 5m or 1h');
        const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
        return Number(match[1]) * unit;
      },
      show: (ms) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`),
    };
  },
  /** Sizes like "512MiB", "10GiB", "1000" (bytes). */
  bytes(description: string, defaultValue: number): Setting<number> {
    return {
      description,
      default: defaultValue,
      parse(raw) {
        const match = /^(\d+(?:\.\d+)?)\s*(|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/i.exec(raw.trim());
        if (!match) throw new Error('expected a size such as 1048576, 512MiB or 10GiB');
        return Math.floor(Number(match[1]) * BYTE_UNITS[match[2]!.toLowerCase()]!);
      },
      show(value) {
        const unit = (['TiB', 'GiB', 'MiB', 'KiB'] as const).find((u) => value > 0 && value % BYTE_UNITS[u.toLowerCase()]! === 0);
        return unit ? `${value / BYTE_UNITS[unit.toLowerCase()]!}${unit}` : String(value);
      },
    };
  },
  /** Comma-separated lists; empty means none. */
  list(description: string, defaultValue: string[]): Setting<string[]> {
    return {
      description,
      default: defaultValue,
      parse: (raw) =>
        raw
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item !== ''),
      show: (items) => items.join(','),
    };
  },
};

/** Settings every service has: where to listen, TLS, the event bus, logging and metrics. */
export function serverSettings(defaultPort: number) {
  return {
    host: setting.string('address to listen on', '127.0.0.1'),
    port: setting.port('port to listen on (0 picks a free one)', defaultPort),
    tlsCert: setting.optionalString('PEM certificate of this server (enables TLS)'),
    tlsKey: setting.optionalString('PEM private key of this server'),
    tlsCa: setting.optionalString('PEM CA bundle that client certificates must chain to (enables mTLS)'),
    insecure: setting.boolean('allow plaintext on a non-loopback address'),
    natsUrl: setting.optionalString('NATS server URL for events, e.g. nats://127.0.0.1:4222 (default: in-process events)'),
    logLevel: setting.oneOf('log level', ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    metricsPort: setting.port('port of the Prometheus endpoint GET /metrics, plain HTTP on --host (0: off)', 0),
  };
}

/** Runs a service's main: configuration errors exit 2 with the message, other failures exit 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.usage);
      process.exit(0);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
