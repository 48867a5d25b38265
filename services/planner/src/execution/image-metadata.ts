/** The contract's images and their metadata ↔ the planner's domain (ImageMetadata, CatalogImage). */
import type { ImageMetadata as ProtoImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
import type { Image } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import type { CatalogImage } from '../domain/catalog.ts';
import type { ImageMetadata } from '../domain/plan.ts';

const nsPerSecond = 1_000_000_000;

function duration(ns: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ns / nsPerSecond)), nanos: ns % nsPerSecond };
}

function nanoseconds(d: { seconds: string; nanos: number } | undefined): number {
  return d === undefined ? 0 : Number(d.seconds) * nsPerSecond + d.nanos;
}

export function toProtoImageMetadata(image: ImageMetadata): ProtoImageMetadata {
  return {
    entrypoint: image.entrypoint,
    cmd: image.cmd,
    env: image.env,
    user: image.user,
    workingDir: image.workingDir,
    exposedPorts: image.exposedPorts,
    labels: image.labels,
    volumes: image.volumes,
    stopSignal: image.stopSignal,
    healthcheck: image.healthcheck && {
      test: image.healthcheck.test,
      interval: duration(image.healthcheck.intervalNs),
      timeout: duration(image.healthcheck.timeoutNs),
      startPeriod: duration(image.healthcheck.startPeriodNs),
      startInterval: duration(image.healthcheck.startIntervalNs),
      retries: image.healthcheck.retries,
    },
    onbuild: image.onBuild,
    shell: image.shell,
  };
}

export function fromProtoImageMetadata(image: ProtoImageMetadata): ImageMetadata {
  const hc = image.healthcheck;
  return {
    entrypoint: image.entrypoint,
    cmd: image.cmd,
    env: image.env,
    user: image.user,
    workingDir: image.workingDir,
    exposedPorts: image.exposedPorts,
    labels: image.labels,
    volumes: image.volumes,
    stopSignal: image.stopSignal,
    ...(hc
      ? {
          healthcheck: {
            test: hc.test,
            intervalNs: nanoseconds(hc.interval),
            timeoutNs: nanoseconds(hc.timeout),
            startPeriodNs: nanoseconds(hc.startPeriod),
            startIntervalNs: nanoseconds(hc.startInterval),
            retries: hc.retries,
          },
        }
      : {}),
    onBuild: image.onbuild,
    shell: image.shell,
  };
}

/** The vmm's images as catalog entries, one per name an image goes by. */
export function catalogOf(images: readonly Image[]): CatalogImage[] {
  const entries: CatalogImage[] = [];
  for (const image of images) {
    const kind = image.parent === '' ? 'base-os' : 'built';
    const metadata = image.metadata ? fromProtoImageMetadata(image.metadata) : undefined;
    for (const ref of [`${image.name}:${image.tag}`, ...image.aliases]) {
      const colon = ref.lastIndexOf(':');
      entries.push({ name: ref.slice(0, colon), tag: ref.slice(colon + 1), kind, digest: image.digest, ...(metadata ? { metadata } : {}) });
    }
  }
  return entries;
}
