import { loadConfig, serverSettings, setting, type ConfigOf } from '@kindling/runtime';
import { DEFAULT_LIMITS } from './domain/build-context.ts';

const { bytes, list } = setting;

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
  handoffDir: setting.string(
    'directory under which same-host consumers may ask ReadBlob to copy blobs (copy_to); empty: off',
    '',
  ),
  localRoots: list('when set, local contexts must lie under one of these directories', []),
};

export type FetcherConfig = ConfigOf<typeof fetcherSettings>;

export function loadFetcherConfig(argv?: readonly string[], env?: NodeJS.ProcessEnv): FetcherConfig {
  return loadConfig('KINDLING_FETCHER', fetcherSettings, argv, env);
}
