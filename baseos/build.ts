/**
 * `npx tsx baseos/build.ts debian/bookworm [--size 2G] [--out DIR]`: the same as `kindling baseos build`,
 * runnable from a checkout without the CLI. Recipes live beside this file: baseos/<os>/<version>/.
 */
import { run } from '../cli/src/commands/baseos.ts';

process.exitCode = await run(['build', ...process.argv.slice(2)]);
