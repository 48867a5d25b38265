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

export const SUPPORTED_PLATFORMS = new Set(['linux/amd64', 'linux/amd64/v1', 'linux/x86_64', 'amd64']);

/** Passed to RUN without being declared and never reported as unused (Docker's predefined ARGs). */
export const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);
