/** Step cache keys: sha256 over the parent key, the canonical expanded instruction and its inputs. */
import * as crypto from 'node:crypto';
import type { StepCacheKey, StepInput } from './plan.ts';

// crypto.hash (Node >= 20.12) is the one-shot form: much cheaper than createHash for short inputs.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export const sha256 = (text: string): string =>
  'sha256:' + (oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text).digest('hex'));

export function baseCacheKey(descriptor: string, platform: string): StepCacheKey {
  return { digest: sha256(`FROM\n${descriptor}\n${platform}`), parent: '', complete: !descriptor.startsWith('unresolved:') };
}

export function stepCacheKey(parent: StepCacheKey, canonical: readonly string[], inputs: readonly StepInput[]): StepCacheKey {
  let text = parent.digest;
  for (const part of canonical) text += '\n' + part;
  let complete = parent.complete;
  for (const input of inputs) {
    text += `\n${input.kind}:${input.ref}:${input.digest ?? '?'}`;
    if (input.digest === undefined) complete = false;
  }
  return { digest: sha256(text), parent: parent.digest, complete };
}
