import { InvalidArgumentError } from './errors.ts';

/** A content digest as the API spells it: "sha256:<64 hex>". */
export type Digest = `sha256:${string}`;

const DIGEST = /^sha256:[0-9a-f]{64}$/u;

export function parseDigest(raw: string): Digest {
  if (!DIGEST.test(raw)) {
    throw new InvalidArgumentError(
      `digest ${JSON.stringify(raw)} is not of the form sha256:<64 lowercase hex digits>`,
    );
  }
  return raw as Digest;
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}
