/** `kindling images [-a] [--json]`: the images in a vmm's store (ListImages). */
import type { ListImagesResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { formatAge, formatBytes, printJson, printTable, shortDigest } from '../output/format.ts';
import { RUN_IMAGE_REPOSITORY } from '../run-image.ts';
import { VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';
import { imageView } from '../views/image-view.ts';

export const describe = "list a vmm's images (base OSes and built images)";

const usage = `usage: kindling images [-a] [--json]

options:
  -a, --all                also kindling's internal images: step-cache snapshots (kindling-cache/...),
                           kept stages (kindling-intermediate/...) and per-run copies (kindling-run/...)
      --json               one JSON document: {"images": [{ref, name, tag, digest, sizeBytes, created, metadata, ...}]}
${vmmUsage}`;

// The planner's and `kindling run`'s own repositories (ListImages.include_internal covers the planner's).
const INTERNAL = new RegExp(`^(kindling-cache|kindling-intermediate|${RUN_IMAGE_REPOSITORY})/`);

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('images', usage, {
    args: argv,
    options: { all: { type: 'boolean', short: 'a', default: false }, json: { type: 'boolean', default: false }, ...vmmOptions },
  });
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  return withService('images', VMM, values, async (client) => {
    const { images } = await unaryCall<ListImagesResponse>('vmm', (cb) => client.listImages({ name: '', includeInternal: values.all }, cb));
    const shown = values.all ? images : images.filter((image) => !INTERNAL.test(image.name));
    if (values.json) printJson(process.stdout, { images: shown.map(imageView) });
    else {
      printTable(
        process.stdout,
        ['REPOSITORY', 'TAG', 'DIGEST', 'SIZE', 'ON DISK', 'CREATED', 'FROM'],
        shown.map((i) => [
          i.name,
          i.tag,
          shortDigest(i.digest),
          formatBytes(Number(i.sizeBytes)),
          formatBytes(Number(i.allocatedBytes)),
          formatAge(i.created),
          i.parent || (i.aliases.length ? `base OS, also ${i.aliases.join(', ')}` : 'base OS'),
        ]),
      );
    }
    return 0;
  });
}
