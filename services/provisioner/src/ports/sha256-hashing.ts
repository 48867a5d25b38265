/** A sha256 over a stream of chunks; where the hashing runs (inline, a worker thread) is the adapter's choice. */
export interface RunningSha256 {
  /** Adds a chunk (the caller may reuse it at once); a returned promise asks the caller to wait (backpressure). */
  update(chunk: Buffer): void | Promise<void>;
  /** The hex digest of everything added. */
  hexDigest(): Promise<string>;
  /** Forgets an abandoned hash; safe to call more than once. */
  discard(): void;
}

export interface Sha256Hashing {
  /** Starts a hash of about `expectedSize` bytes (small ones are cheaper inline). */
  start(expectedSize: number): RunningSha256;
}
