/** An image as `kindling images --json` and `kindling inspect --json` show it. */
import type { ImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type { Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { isoOrNull } from '../output/format.ts';

export function metadataView(metadata: ImageMetadata | undefined) {
  return {
    entrypoint: metadata?.entrypoint ?? [],
    cmd: metadata?.cmd ?? [],
    env: metadata?.env ?? [],
    user: metadata?.user ?? '',
    workingDir: metadata?.workingDir ?? '',
    exposedPorts: metadata?.exposedPorts ?? [],
    volumes: metadata?.volumes ?? [],
    labels: metadata?.labels ?? {},
    stopSignal: metadata?.stopSignal ?? '',
  };
}

export function imageView(image: Image) {
  return {
    ref: `${image.name}:${image.tag}`,
    name: image.name,
    tag: image.tag,
    aliases: image.aliases,
    digest: image.digest,
    sizeBytes: Number(image.sizeBytes),
    allocatedBytes: Number(image.allocatedBytes),
    created: isoOrNull(image.created),
    parent: image.parent || null,
    kernelId: image.kernelId || null,
    metadata: metadataView(image.metadata),
  };
}
