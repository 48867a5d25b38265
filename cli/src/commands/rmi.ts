/** `kindling rmi IMAGE...`: deletes images from a vmm's store (DeleteImage). */
import { unaryCall } from '@kindling/runtime';
import { parseCommandLine } from '../command-line.ts';
import { usageError, VMM, vmmOptions, vmmUsage, withService } from '../service-call.ts';

export const describe = "remove images from a vmm's store (refused while a VM uses one)";

const usage = `usage: kindling rmi IMAGE...

IMAGE is name[:tag] (tag default latest).

options:
${vmmUsage}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('rmi', usage, { args: argv, allowPositionals: true, options: { ...vmmOptions } });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) return usageError('rmi', 'needs an IMAGE', usage);
  return withService('rmi', VMM, values, async (client) => {
    for (const image of positionals) {
      await unaryCall<unknown>('vmm', (cb) => client.deleteImage({ image }, cb));
      process.stdout.write(`removed ${image}\n`);
    }
    return 0;
  });
}
