import { envName, loadConfig, serverSettings, setting, type ConfigOf, type Setting } from '@kindling/runtime';
import { DEFAULT_LIMITS } from './domain/build-context.ts';

/** Sizes like "512MiB", "10GiB", "1000" (bytes). */
function bytes(description: string, defaultValue: number): Setting<number> {
  return {
    description,
    default: defaultValue,
    parse(raw) {
      const m = /^(\d+(?:\.\d+)?)\s*(|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/iu.exec(raw.trim());
      if (!m) throw new Error('expected a size such as 1048576, 512MiB or 10GiB');
      const unit: Record<string, number> = {
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
      return Math.floor(Number(m[1]) * unit[m[2]!.toLowerCase()]!);
    },
  };
}

/** Comma-separated lists; empty means none. */
function list(description: string, defaultValue: string[]): Setting<string[]> {
  return {
    description,
    default: defaultValue,
    parse: (raw) =>
      raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
  };
}

export const fetcherSettings = {
  ...serverSettings(50052),
  cacheDir: setting.string('directory of the content-addressed blob cache', '/var/cache/kindling/fetcher'),
  cacheSize: bytes('blob cache size limit; least recently used blobs are evicted beyond it', 20 * 1024 ** 3),
  maxFileSize: bytes('largest single file a context or URL may bring', DEFAULT_LIMITS.maxFileSize),
  maxContextSize: bytes('largest total size of a context', DEFAULT_LIMITS.maxContextSize),
  maxFiles: setting.integer('most files a context may hold', DEFAULT_LIMITS.maxFiles, 1),
  maxRedirects: setting.integer('most HTTP redirects followed per request', 5, 0, 50),
  fetchTimeout: setting.durationMs(
    'longest a resolve, listing or download may take',
    DEFAULT_LIMITS.fetchTimeoutMs,
  ),
  headersTimeout: setting.durationMs('longest wait for an HTTP server to connect and answer', 30_000),
  bodyTimeout: setting.durationMs('longest pause inside an HTTP body', 60_000),
  allowedSchemes: list('URL schemes sources may use', [
    'http',
    'https',
    'git+https',
    'git+http',
    'git+ssh',
    'ssh',
  ]),
  allowHosts: list('when set, the only hosts sources may come from ("example.com", "*.example.com")', []),
  denyHosts: list('hosts sources may never come from', []),
  allowLinkLocal: setting.boolean('allow link-local and metadata addresses (169.254.0.0/16, fd00:ec2::254)'),
  gitSshCommand: setting.string(
    'command git uses for ssh remotes (add -i <key>, -o UserKnownHostsFile=<file> here)',
    'ssh -o BatchMode=yes',
  ),
  localRoots: list('when set, local contexts must lie under one of these directories', []),
};

export type FetcherConfig = ConfigOf<typeof fetcherSettings>;

export function loadFetcherConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): FetcherConfig {
  return loadConfig('KINDLING_FETCHER', fetcherSettings, argv, env);
}

/** What `--help` prints: every setting with its flag, environment variable and default. */
export function fetcherUsage(): string {
  const lines = ['usage: fetcher [--setting=value]...', '', 'settings (flag, environment variable, default):'];
  for (const [key, s] of Object.entries(fetcherSettings) as [string, Setting<unknown>][]) {
    const flag = `--${key.replace(/[A-Z]/gu, (c) => `-${c.toLowerCase()}`)}`;
    const shown = Array.isArray(s.default) ? s.default.join(',') : readable(key, s.default);
    const fallback = shown === undefined || shown === '' ? '' : `; default ${String(shown)}`;
    lines.push(`  ${flag}`, `      ${s.description} (${envName('KINDLING_FETCHER', key)}${fallback})`);
  }
  return `${lines.join('\n')}\n`;
}

function readable(key: string, value: unknown): unknown {
  if (typeof value !== 'number') return value;
  if (/Size$/u.test(key) && value % 1024 ** 3 === 0) return `${value / 1024 ** 3}GiB`;
  if (/Timeout$/u.test(key) && value % 1000 === 0) return `${value / 1000}s`;
  return value;
}
