/**
 * The images a build may start FROM: base OSes and images kindling built. The vmm's image store
 * implements it; the planner only reads it.
 */
import type { CatalogImage } from '../domain/catalog.ts';

export type { CatalogImage };

export interface ImageCatalog {
  listImages(signal?: AbortSignal): Promise<CatalogImage[]>;
}
