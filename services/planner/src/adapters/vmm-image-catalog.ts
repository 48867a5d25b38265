/** The ImageCatalog port over the vmm's image store (ListImages): base OSes and built images. */
import type { CatalogImage } from '../domain/catalog.ts';
import { catalogOf } from '../execution/image-metadata.ts';
import type { ImageCatalog } from '../ports/image-catalog.ts';
import type { BuildVmHost } from '../ports/build-services.ts';

export class VmmImageCatalog implements ImageCatalog {
  constructor(private readonly vmHost: Pick<BuildVmHost, 'listImages'>) {}

  async listImages(signal?: AbortSignal): Promise<CatalogImage[]> {
    return catalogOf(await this.vmHost.listImages(signal ?? new AbortController().signal));
  }
}

/** No VM host configured: every base is planned as unresolved. */
export const emptyImageCatalog: ImageCatalog = { listImages: async () => [] };
