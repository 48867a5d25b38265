/** A successful (2xx) HTTP response whose body has not been read yet. */
export interface HttpBody {
  /** The URL after redirects. */
  finalUrl: URL;
  status: number;
  contentLength: number | undefined;
  lastModified: Date | undefined;
  contentType: string | undefined;
  body: AsyncIterable<Uint8Array>;
  /** Drops the body without reading it. */
  discard(): void;
}

/** GETs URLs under the fetcher's network policy, redirect and time limits. */
export interface HttpSource {
  /** NotFound for 404/410, Unavailable for 5xx/timeouts/connection failures. */
  get(url: URL, signal?: AbortSignal): Promise<HttpBody>;
}
