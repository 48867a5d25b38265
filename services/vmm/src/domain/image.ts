import { InvalidArgumentError } from './errors.ts';

/**
 * Image metadata as the contract's kindling.image.v1.ImageMetadata, in domain form
 * (the gRPC adapter converts; image.json stores this shape).
 */
export interface ImageMetadata {
  readonly entrypoint: string[];
  readonly cmd: string[];
  readonly env: string[];
  readonly user: string;
  readonly workingDir: string;
  readonly exposedPorts: string[];
  readonly labels: Record<string, string>;
  readonly volumes: string[];
  readonly stopSignal: string;
  readonly healthcheck?: {
    readonly test: string[];
    readonly intervalMs?: number;
    readonly timeoutMs?: number;
    readonly startPeriodMs?: number;
    readonly startIntervalMs?: number;
    readonly retries: number;
  };
  readonly onbuild: string[];
  readonly shell: string[];
}

export const emptyImageMetadata = (): ImageMetadata => ({
  entrypoint: [],
  cmd: [],
  env: [],
  user: '',
  workingDir: '',
  exposedPorts: [],
  labels: {},
  volumes: [],
  stopSignal: '',
  onbuild: [],
  shell: [],
});

export interface ImageRef {
  readonly name: string;
  readonly tag: string;
}

/** What image.json holds beside rootfs.ext4. */
export interface ImageRecord {
  readonly name: string;
  readonly tag: string;
  /** Content address of rootfs.ext4: "blake3-blocks-4m:<hex>" (see adapters/fs/block-list-digest.ts). */
  readonly digest: string;
  /** Apparent size of rootfs.ext4 in bytes (the filesystem size; allocation is sparse). */
  readonly sizeBytes: number;
  readonly created: string;
  /** "name:tag" this image was committed from, or "" for base and imported images. */
  readonly parent: string;
  readonly metadata: ImageMetadata;
  /** Kernel the image boots with by default (base OS images register theirs). */
  readonly defaultKernelId?: string;
  /** Whether the image carries no metadata to run (base OS) or an ENTRYPOINT/CMD to start. */
  readonly base: boolean;
  /** Other name:tag references registered for the same disk (e.g. debian:12 beside debian:bookworm). */
  readonly aliases?: string[];
}

export interface KernelRecord {
  readonly id: string;
  /** `uname -r` of the kernel, e.g. 6.1.0-28-cloud-amd64. */
  readonly version: string;
  readonly bzImagePath?: string;
  readonly vmlinuxPath?: string;
  readonly initrdPath?: string;
  readonly configPath?: string;
  readonly created: string;
}

// Docker-like: lowercase path components separated by / ; tags up to 128 chars.
const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const KERNEL_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Parses "name:tag" (tag defaults to "latest"); rejects anything that could escape the store. */
export function parseImageRef(text: string): ImageRef {
  const trimmed = text.trim();
  const colon = trimmed.lastIndexOf(':');
  const hasTag = colon > trimmed.lastIndexOf('/');
  const name = hasTag ? trimmed.slice(0, colon) : trimmed;
  const tag = hasTag ? trimmed.slice(colon + 1) : 'latest';
  if (!NAME.test(name) || name.length > 255) {
    throw new InvalidArgumentError(
      `image name "${name}" in "${text}" is not valid: use lowercase letters, digits and . _ - separated by /, e.g. debian:bookworm`,
    );
  }
  if (!TAG.test(tag)) {
    throw new InvalidArgumentError(
      `image tag "${tag}" in "${text}" is not valid: use letters, digits, _ . - (at most 128)`,
    );
  }
  return { name, tag };
}

/** Repositories of a build's own images: step-cache snapshots and intermediate stages (ListImages hides them). */
export const INTERNAL_IMAGE_PREFIXES = ['kindling-cache/', 'kindling-intermediate/'] as const;

export const isInternalImageName = (name: string): boolean =>
  INTERNAL_IMAGE_PREFIXES.some((prefix) => name.startsWith(prefix));

export const formatImageRef = (ref: ImageRef): string => `${ref.name}:${ref.tag}`;

export function checkKernelId(id: string): string {
  if (!KERNEL_ID.test(id)) {
    throw new InvalidArgumentError(
      `kernel id "${id}" is not valid: use letters, digits, _ . - (at most 128)`,
    );
  }
  return id;
}
