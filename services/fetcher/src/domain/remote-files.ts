import type { BlobStore } from '../ports/blob-store.ts';
import type { HttpSource } from '../ports/http-source.ts';
import type { Digest } from './digest.ts';
import { CancelledError, DomainError, InvalidArgumentError } from './errors.ts';
import { redactUrl } from './network-policy.ts';
import { SingleFlight } from './single-flight.ts';

export interface RemoteFile {
  digest: Digest;
  size: number;
  lastModified: Date | undefined;
  finalUrl: URL;
}

/**
 * Downloads URLs into the blob store, once per URL however many callers ask at
 * the same time, refusing directory URLs (HTTP cannot list a directory).
 */
export class RemoteFiles {
  private readonly flights = new SingleFlight<RemoteFile>();

  constructor(
    private readonly http: HttpSource,
    private readonly blobs: BlobStore,
    private readonly limits: { maxFileSize: number; fetchTimeoutMs: number },
  ) {}

  fetch(
    url: URL,
    options: { expectedDigest?: Digest | undefined; signal?: AbortSignal; shownAs?: string },
  ): Promise<RemoteFile> {
    const key = `${url.href}\n${options.expectedDigest ?? ''}`;
    // The shared download has its own deadline: one caller giving up must not fail the others.
    const flight = this.flights.run(key, async () => {
      const signal = AbortSignal.timeout(this.limits.fetchTimeoutMs);
      const shown = options.shownAs ?? redactUrl(url);
      if (url.pathname.endsWith('/')) throw directoryError(shown);
      const res = await this.http.get(url, signal);
      // A server that redirects "dir" to "dir/" is telling us it is a directory.
      if (res.finalUrl.pathname.endsWith('/')) {
        res.discard();
        throw directoryError(shown);
      }
      const blob = await this.blobs.ingest(res.body, {
        maxSize: this.limits.maxFileSize,
        expectedDigest: options.expectedDigest,
        signal,
        label: `GET ${redactUrl(res.finalUrl)}`,
      });
      return { ...blob, lastModified: res.lastModified, finalUrl: res.finalUrl };
    });
    return abortable(flight, options.signal);
  }
}

function directoryError(shown: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `source ${shown} is a directory; a directory cannot be fetched over HTTP (there is no listing), so name each file, or use a git or tarball context`,
  );
}

/** Stops waiting for a shared promise when this caller's signal fires. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(cancelled(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function cancelled(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof DomainError
    ? reason
    : new CancelledError('the request was cancelled by the client');
}
