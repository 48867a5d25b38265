/** The planner's ImageMetadata ↔ the contract's kindling.image.v1.ImageMetadata. */
import type { ImageMetadata as ProtoImageMetadata } from '@kindling/proto/gen/kindling/image/v1/image.ts';
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
