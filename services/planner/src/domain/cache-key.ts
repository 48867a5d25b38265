/** Step cache keys: sha256 over the parent key, the canonical expanded instruction and its inputs. */
import { createHash } from 'node:crypto';
import type { StepCacheKey, StepInput } from './plan.ts';

export const sha256 = (text: string): string => 'sha256:' + createHash('sha256').update(text).digest('hex');

export function baseCacheKey(descriptor: string, platform: string): StepCacheKey {
  return { digest: sha256(`FROM\n${descriptor}\n${platform}`), parent: '', complete: !descriptor.startsWith('unresolved:') };
}

export function stepCacheKey(parent: StepCacheKey, canonical: string, inputs: readonly StepInput[]): StepCacheKey {
  let text = parent.digest + '\n' + canonical;
  let complete = parent.complete;
  for (const input of inputs) {
    text += `\n${input.kind}:${input.ref}:${input.digest ?? '?'}`;
    if (input.digest === undefined) complete = false;
  }
  return { digest: sha256(text), parent: parent.digest, complete };
}
