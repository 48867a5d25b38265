/**
 * `kindling baseos build <recipe> [--size 2G] [--out DIR] [--cache-dir DIR]` and `kindling baseos list`:
 * builds a base-OS image (rootfs.ext4 + image.json + kernels) from baseos/<recipe>, cached by recipe hash.
 */
import { buildBaseOs, defaultCacheDir, listRecipes, printProgress } from '@kindling/vmm/baseos';
import { parseCommandLine } from '../command-line.ts';

export const describe = 'build a base-OS image (e.g. debian/bookworm) into the VM host cache';

const usage = `usage:
  kindling baseos build <recipe> [--size 2G] [--out DIR] [--cache-dir DIR] [--verbose]
  kindling baseos list

Builds baseos/<recipe> (e.g. debian/bookworm) into <cache-dir>/baseos/<recipe-hash>/ holding rootfs.ext4,
image.json and kernel/{vmlinuz,initrd.img,vmlinux,config,version}. An unchanged recipe is not rebuilt.
The cache dir defaults to $KINDLING_CACHE_DIR or /var/cache/kindling. Needs root and mmdebstrap
(Debian recipes) or a running Docker engine (Alpine recipes).
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('baseos', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      out: { type: 'string' },
      'cache-dir': { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const [sub, recipe] = positionals;
  if (sub === 'list') {
    for (const id of await listRecipes()) process.stdout.write(`${id}\n`);
    return 0;
  }
  if (sub !== 'build' || !recipe) {
    const problem = sub === undefined ? 'needs a subcommand' : sub === 'build' ? 'build needs a <recipe> (kindling baseos list shows them)' : `unknown subcommand "${sub}"`;
    process.stderr.write(`kindling baseos: ${problem}\n${usage}`);
    return 2;
  }
  const started = performance.now();
  try {
    const build = await buildBaseOs(recipe, {
      cacheDir: values['cache-dir'] ?? defaultCacheDir(),
      progress: printProgress(process.stderr, values.verbose ?? false),
      ...(values.size ? { size: values.size } : {}),
      ...(values.out ? { outDir: values.out } : {}),
    });
    const total = ((performance.now() - started) / 1000).toFixed(1);
    const lines = [
      `${build.imageJson.names.join(', ')} ${build.cached ? 'cached' : 'built'} in ${total} s`,
      `  rootfs   ${build.rootfs}`,
      `  image    ${build.imageJsonPath} (${build.imageJson.digest})`,
      `  kernel   ${build.kernel.id}: ${build.kernel.vmlinuz} (qemu), ${build.kernel.vmlinux} (firecracker)`,
      `  initrd   ${build.kernel.initrd}`,
      ...(values.out ? [`  copied to ${values.out}`] : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } catch (e) {
    process.stderr.write(`kindling baseos build ${recipe}: ${(e as Error).message}\n`);
    return 1;
  }
}
