import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { TlsFiles } from '@kindling/runtime';

/**
 * A command's flags as every kindling command reads them, plus -h/--help: a bad flag prints the error
 * and the usage (exit 2), --help prints the usage (exit 0). Returns the parsed flags, or the exit code.
 */
export function parseCommandLine<const T extends ParseArgsConfig & { options: NonNullable<ParseArgsConfig['options']> }>(
  command: string,
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T>> | number {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs({ ...config, options: { ...config.options, help: { type: 'boolean', short: 'h' } } }) as ReturnType<
      typeof parseArgs<T>
    >;
  } catch (error) {
    process.stderr.write(`kindling ${command}: ${(error as Error).message}\n${usage}`);
    return 2;
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(usage);
    return 0;
  }
  return parsed;
}

/**
 * The first of flags whose value is not a whole number (vCPUs, MiB, bytes, seconds), as an error to
 * print with the usage; undefined when all are. Number("abc") would otherwise reach the wire as NaN.
 */
export function notWholeNumber(values: Record<string, unknown>, flags: string[]): string | undefined {
  for (const flag of flags) {
    const value = values[flag];
    if (typeof value === 'string' && !/^\d+$/.test(value)) return `--${flag} "${value}": expected a whole number`;
  }
  return undefined;
}

/** The TLS flags of every command that talks to a service. */
export const tlsOptions = {
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

export function tlsFilesOf(values: { 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string }): TlsFiles {
  return { caPath: values['tls-ca'], certPath: values['tls-cert'], keyPath: values['tls-key'] };
}
