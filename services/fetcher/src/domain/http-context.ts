import { createHash } from 'node:crypto';
import type { HttpSource } from '../ports/http-source.ts';
import type { ContextLoader } from '../ports/context-loader.ts';
import type {
  ContextFiles,
  ContextFileStream,
  ContextSource,
  FetchLimits,
  LoadedContext,
  SelectOptions,
} from './build-context.ts';
import { ignoreFileCandidates } from './build-context.ts';
import type { SelectedEntry, SourceMatch } from './context-index.ts';
import { contextRelativePath } from './context-path.ts';
import { DockerignoreMatcher } from './dockerignore.ts';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError } from './errors.ts';
import { hasGlobMeta } from './go-glob.ts';
import { checkHost, checkScheme, type NetworkPolicy, redactUrl } from './network-policy.ts';
import type { RemoteFiles } from './remote-files.ts';

type HttpRequest = Extract<ContextSource, { kind: 'http' }>;

/**
 * firebuild's seed form: the Dockerfile's URL minus its file name is the
 * context root, and sources resolve against it as URLs.
 */
export class HttpContextLoader implements ContextLoader<HttpRequest> {
  constructor(
    private readonly http: HttpSource,
    private readonly remote: RemoteFiles,
    private readonly policy: NetworkPolicy,
    private readonly limits: FetchLimits,
  ) {}

  async load(request: HttpRequest, signal: AbortSignal): Promise<LoadedContext> {
    const url = parseHttpUrl(request.dockerfileUrl, this.policy);
    const fileName = url.pathname.split('/').pop() ?? '';
    if (fileName === '') {
      throw new InvalidArgumentError(
        `Dockerfile URL ${redactUrl(url)} ends in "/"; it must name the Dockerfile itself`,
      );
    }
    const root = new URL('./', url);
    root.search = '';
    root.hash = '';
    const dockerfile = await this.text(url, signal);
    if (dockerfile === undefined)
      throw new NotFoundError(`GET ${redactUrl(url)} returned 404: no Dockerfile there`);
    let dockerignore = '';
    let dockerignorePath = '';
    for (const candidate of ignoreFileCandidates(decodeSegment(fileName))) {
      const text = await this.text(new URL(encodeSourcePath(candidate), root), signal);
      if (text !== undefined) {
        dockerignore = text;
        dockerignorePath = candidate;
        break;
      }
    }
    const matcher = DockerignoreMatcher.fromText(dockerignore);
    return {
      kind: 'http',
      displayRoot: redactUrl(root),
      dockerfile,
      dockerfilePath: decodeSegment(fileName),
      dockerignore,
      dockerignorePath,
      identity: `http\n${url.href}\n${sha256(dockerfile)}\n${sha256(dockerignore)}`,
      files: new HttpContextFiles(root, matcher, this.remote, this.policy, this.limits),
    };
  }

  /** Body of a small text file, or undefined on 404. */
  private async text(url: URL, signal: AbortSignal): Promise<string | undefined> {
    let res;
    try {
      res = await this.http.get(url, signal);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += chunk.byteLength;
      if (size > this.limits.maxDockerfileSize) {
        res.discard();
        throw new ResourceExhaustedError(
          `${redactUrl(url)} is larger than ${this.limits.maxDockerfileSize} bytes, too large for a Dockerfile or .dockerignore`,
        );
      }
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

class HttpContextFiles implements ContextFiles {
  constructor(
    private readonly root: URL,
    private readonly ignore: DockerignoreMatcher,
    private readonly remote: RemoteFiles,
    private readonly policy: NetworkPolicy,
    private readonly limits: FetchLimits,
  ) {}

  async list(patterns: string[], excludes: string[], signal?: AbortSignal, options?: SelectOptions): Promise<SourceMatch[]> {
    if (options?.parents) {
      throw new InvalidArgumentError(
        'COPY --parents cannot apply to an HTTP context: its files are named one by one, with no tree to keep; use a directory, git or tarball context',
      );
    }
    if (excludes.length > 0) {
      throw new InvalidArgumentError(
        'COPY --exclude cannot apply to an HTTP context: its files are named one by one',
      );
    }
    let total = 0;
    const matches = await Promise.all(
      patterns.map(async (pattern): Promise<SourceMatch> => {
        const entry = await this.fetchSource(pattern, signal);
        total += entry.size;
        if (total > this.limits.maxContextSize) {
          throw new ResourceExhaustedError(
            `sources add up to more than the context size limit of ${this.limits.maxContextSize} bytes`,
          );
        }
        return { pattern, files: [entry] };
      }),
    );
    return matches;
  }

  async stream(pattern: string, signal?: AbortSignal): Promise<ContextFileStream> {
    const { url, shown } = this.sourceUrl(pattern);
    const streamed = await this.remote.stream(url, { signal, shownAs: shown });
    const digest = streamed.done.then((f) => f.digest);
    // A reader whose stream failed never awaits the digest; its rejection must not go unhandled.
    digest.catch(() => {});
    return { totalSize: streamed.contentLength, chunks: streamed.chunks, digest };
  }

  private async fetchSource(pattern: string, signal?: AbortSignal): Promise<SelectedEntry> {
    const { url, path, shown } = this.sourceUrl(pattern);
    return fetchedEntry(path, url, this.remote, signal, shown);
  }

  /** Where a source is: absolute URLs as they are, relative paths joined onto the context root. */
  private sourceUrl(pattern: string): { url: URL; path: string; shown: string | undefined } {
    if (/^https?:\/\//iu.test(pattern)) {
      const url = parseHttpUrl(pattern, this.policy);
      return { url, path: urlFileName(url), shown: undefined };
    }
    const path = contextRelativePath(pattern);
    if (path === '.' || pattern.endsWith('/')) {
      throw new InvalidArgumentError(
        `source "${pattern}" is a directory; a directory cannot be fetched over HTTP (there is no listing), so name each file, or use a git or tarball context`,
      );
    }
    if (hasGlobMeta(path)) {
      throw new InvalidArgumentError(
        `source "${pattern}" is a wildcard; an HTTP context cannot be listed, so name each file`,
      );
    }
    if (this.ignore.excludes(path)) {
      throw new NotFoundError(`source "${pattern}" is excluded by the context's .dockerignore`);
    }
    const url = new URL(encodeSourcePath(path), this.root);
    return { url, path, shown: `"${pattern}" (${redactUrl(url)})` };
  }
}

/** A file fetched over HTTP: mode 0644 and Last-Modified as mtime, as Docker does for ADD URLs. */
export async function fetchedEntry(
  path: string,
  url: URL,
  remote: RemoteFiles,
  signal?: AbortSignal,
  shownAs?: string,
  expectedDigest?: `sha256:${string}`,
): Promise<SelectedEntry & { digest: `sha256:${string}` }> {
  const file = await remote.fetch(url, { signal, shownAs, expectedDigest });
  return {
    path,
    realPath: path,
    matchRoot: path,
    type: 'file',
    size: file.size,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtimeMs: file.lastModified?.getTime() ?? 0,
    digest: file.digest,
  };
}

export function parseHttpUrl(raw: string, policy: NetworkPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`${JSON.stringify(redactUrl(raw))} is not a valid URL`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https') {
    throw new InvalidArgumentError(`${redactUrl(url)} is not an http(s) URL`);
  }
  checkScheme(policy, scheme, redactUrl(url));
  // Refused by policy before anything else is said about the URL (or anything connects).
  checkHost(policy, url.hostname, redactUrl(url));
  return url;
}

/** The file name ADD gives a URL source: its last path segment. */
export function urlFileName(url: URL): string {
  const last = decodeSegment(url.pathname.split('/').pop() ?? '');
  return last === '' || last === '.' || last === '..' ? 'index' : last;
}

/** Context paths joined onto a URL root: each segment percent-encoded, so '#' or '%' stay part of the name. */
function encodeSourcePath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A URL path segment as a file name; kept as written when its %-escapes are malformed ("a%zz"). */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
