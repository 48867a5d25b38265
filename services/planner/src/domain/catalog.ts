/** What the planner knows of the images a stage can start FROM (a snapshot of the ImageCatalog port). */
import type { ImageMetadata } from './plan.ts';

export interface CatalogImage {
  name: string;
  tag: string;
  kind: 'base-os' | 'built';
  digest?: string;
  /** Metadata of a built image (its ONBUILD triggers run in builds FROM it). */
  metadata?: ImageMetadata;
}

export interface ImageReference {
  name: string;
  tag: string;
  /** False when the reference names no tag (the tag is then `latest`, or unused beside a digest). */
  tagged: boolean;
  digest?: string;
}

/** `name[:tag][@digest]` with the tag defaulting to latest; a registry host with a port keeps its colon. */
export function parseImageReference(reference: string): ImageReference {
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  let name = rest;
  let tag = 'latest';
  const tagged = colon > slash;
  if (tagged) {
    name = rest.slice(0, colon);
    tag = rest.slice(colon + 1);
  }
  const parsed: ImageReference = { name, tag, tagged };
  if (digest !== undefined) parsed.digest = digest;
  return parsed;
}

const DOCKER_HUB_PREFIXES = ['docker.io/library/', 'index.docker.io/library/', 'library/'];

/**
 * Finds an image by reference: exact name, or Docker Hub's spelled-out forms of an official image.
 * A digest pins the content, so it is matched instead of the tag (Docker pulls `name:tag@digest` by
 * the digest alone, and `name@digest` has no tag to match).
 */
export function findCatalogImage(images: readonly CatalogImage[], ref: ImageReference): CatalogImage | undefined {
  let short = ref.name;
  for (const prefix of DOCKER_HUB_PREFIXES) if (short.startsWith(prefix)) short = short.slice(prefix.length);
  const sameName = (img: CatalogImage): boolean => img.name === ref.name || img.name === short;
  if (ref.digest !== undefined) return images.find((img) => sameName(img) && img.digest === ref.digest);
  return images.find((img) => sameName(img) && img.tag === ref.tag);
}

/** How a plan shows a reference: `name:tag`, or with the digest it was pinned by (`name@d`, `name:tag@d`). */
export function formatImageReference(name: string, tag: string, pinned: ImageReference): string {
  if (pinned.digest === undefined) return `${name}:${tag}`;
  return `${name}${pinned.tagged ? `:${tag}` : ''}@${pinned.digest}`;
}

export const describeCatalog = (images: readonly CatalogImage[]): string =>
  images.length === 0 ? 'none (no base OS built yet: see docs/dockerfile.md)' : images.map((i) => `${i.name}:${i.tag}`).sort().join(', ');

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);

/** Why a string is not a valid image reference (Docker's grammar), or undefined when it is. */
export function referenceProblem(reference: string): string | undefined {
  if (REFERENCE.test(reference)) return undefined;
  const { name } = parseImageReference(reference);
  if (name !== name.toLowerCase() && REFERENCE.test(reference.toLowerCase())) return `invalid reference format: repository name (${name}) must be lowercase`;
  return `invalid reference format: "${reference}" is not an image reference like debian:12 or registry.example.com/team/app:1.0`;
}
