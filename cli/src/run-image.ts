/**
 * `kindling run --env K=V ... -- ARGS`: CreateVm has no fields for environment or arguments, so the
 * overrides travel as image metadata. The image is stored again under a per-run name with the new
 * metadata (TagImage: a hard link, no copy) and the VM boots that; `kindling rm` removes both.
 */
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type { VmmServiceClient, GetImageResponse, TagImageResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';

/** Repository of the per-run images; `kindling images` hides it without --all. */
export const RUN_IMAGE_REPOSITORY = 'kindling-run';
/** VM label: the image the user asked for (the VM boots its per-run copy). */
export const RUN_SOURCE_LABEL = 'kindling.run.image';
/** VM label: the per-run image to remove with the VM. */
export const RUN_COPY_LABEL = 'kindling.run.copy';

export interface RunOverrides {
  /** "KEY=value" pairs, in order. */
  readonly env: readonly string[];
  /** Replace the image's CMD when not empty (ENTRYPOINT stays, as with docker run). */
  readonly args: readonly string[];
}

export const hasOverrides = (o: RunOverrides): boolean => o.env.length > 0 || o.args.length > 0;

/** --env values as docker run reads them: K=V, or a bare K taking K's value from this environment. */
export function parseEnvFlags(values: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`--env "${value}": expected KEY=VALUE or KEY (a variable name: letters, digits, _)`);
    if (eq >= 0) out.push(value);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  }
  return out;
}

/** The image's metadata with ARGS as its CMD and each --env replacing its key in place or appended. */
export function runMetadata(image: ImageMetadata, overrides: RunOverrides): ImageMetadata {
  const env = [...image.env];
  for (const pair of overrides.env) {
    const key = pair.slice(0, pair.indexOf('=') + 1);
    const at = env.findIndex((existing) => existing.startsWith(key));
    if (at >= 0) env[at] = pair;
    else env.push(pair);
  }
  return { ...image, env, cmd: overrides.args.length > 0 ? [...overrides.args] : image.cmd };
}

/** A VM id for a run whose per-run image must be named before the VM exists. */
export const newRunId = (): string => `run-${randomBytes(5).toString('hex')}`;

/** Stores image again as kindling-run/<vmId>:latest with the overrides applied; returns its name. */
export async function createRunImage(client: VmmServiceClient, image: string, vmId: string, overrides: RunOverrides): Promise<string> {
  const { image: source } = await unaryCall<GetImageResponse>('vmm', (cb) => client.getImage({ image }, cb));
  const copy = `${RUN_IMAGE_REPOSITORY}/${vmId}:latest`;
  const metadata = runMetadata(source?.metadata ?? ImageMetadata.fromPartial({}), overrides);
  try {
    await unaryCall<TagImageResponse>('vmm', (cb) => client.tagImage({ source: image, image: copy, metadata, overwrite: false }, cb));
  } catch (error) {
    // Say what the call was for, not only that it is missing.
    if ((error as { cause?: { code?: number } }).cause?.code === status.UNIMPLEMENTED) throw new Error(`--env and ARGS need the vmm's TagImage (a per-run copy of ${image} with them), which this vmm does not implement yet`);
    throw error;
  }
  return copy;
}

