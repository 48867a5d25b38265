import { posix } from 'node:path';
import { InvalidArgumentError } from './errors.ts';
import { goClean } from './dockerignore.ts';

/**
 * Cleans an ADD/COPY source or Dockerfile path relative to a context root and
 * refuses anything that would leave it: absolute paths and '..' escapes.
 */
export function contextRelativePath(raw: string, what = 'source'): string {
  if (raw.includes('\0'))
    throw new InvalidArgumentError(`${what} path ${JSON.stringify(raw)} contains a NUL byte`);
  if (raw.startsWith('/')) {
    throw new InvalidArgumentError(
      `${what} path ${JSON.stringify(raw)} is absolute; sources must be relative to the build context`,
    );
  }
  const cleaned = goClean(raw);
  if (cleaned === '..' || cleaned.startsWith('../')) {
    throw new InvalidArgumentError(`${what} path ${JSON.stringify(raw)} points outside the build context`);
  }
  return cleaned;
}

/**
 * Resolves a symlink's target against the directory holding the link, within
 * the context. Returns undefined when the target leaves the context (absolute
 * targets count as leaving: the host's / is not the context's).
 */
export function resolveLinkInContext(linkPath: string, target: string): string | undefined {
  if (target.startsWith('/')) return undefined;
  const joined = goClean(posix.join(posix.dirname(linkPath), target));
  if (joined === '..' || joined.startsWith('../')) return undefined;
  return joined;
}
