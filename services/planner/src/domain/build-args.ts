/** Build arguments that exist without an ARG: BuildKit's automatic platform args and the proxy args. */

/** kindling builds linux/amd64 microVMs, so the automatic platform args always describe it. */
export const PLATFORM_ARGS: ReadonlyMap<string, string> = new Map([
  ['BUILDPLATFORM', 'linux/amd64'],
  ['BUILDOS', 'linux'],
  ['BUILDARCH', 'amd64'],
  ['BUILDVARIANT', ''],
  ['TARGETPLATFORM', 'linux/amd64'],
  ['TARGETOS', 'linux'],
  ['TARGETARCH', 'amd64'],
  ['TARGETVARIANT', ''],
]);

const AMD64 = new Set(['linux/amd64', 'linux/amd64/v1', 'linux/x86_64', 'linux/x86-64', 'amd64', 'x86_64', 'x86-64']);

/** Whether a platform string means linux/amd64 once normalized as containerd does (case, x86_64 aliases). */
export function isSupportedPlatform(platform: string): boolean {
  return AMD64.has(platform.trim().toLowerCase());
}

/** Passed to RUN without being declared and never reported as unused (Docker's predefined ARGs). */
export const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
