/** `kindling cni install [--dir /etc/cni/conf.d] [--subnet CIDR] [--bridge NAME] [--force]`: the example CNI network. */
import { DEFAULT_CNI_CONF_DIR, installConflist } from '@kindling/vmm/cni';
import { parseCommandLine } from '../command-line.ts';

export const describe =
  'install the machine-builds CNI network (bridge + host-local + firewall + tap) on a VM host';

const usage = `usage:
  kindling cni install [--dir ${DEFAULT_CNI_CONF_DIR}] [--name machine-builds] [--subnet 192.168.127.0/24]
                       [--bridge kindling0] [--force]

Writes deploy/cni/<name>.conflist into the CNI config dir and reports where each plugin it needs is found
(/opt/cni/bin, /usr/lib/cni, then kindling's own plugins; kindling-tap stands in for tc-redirect-tap).
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine('cni', usage, {
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      subnet: { type: 'string' },
      bridge: { type: 'string' },
      force: { type: 'boolean' },
    },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals[0] !== 'install') {
    process.stderr.write(`kindling cni: ${positionals[0] === undefined ? 'needs a subcommand' : `unknown subcommand "${positionals[0]}"`}\n${usage}`);
    return 2;
  }
  try {
    const result = await installConflist({
      ...(values.dir ? { dir: values.dir } : {}),
      ...(values.name ? { name: values.name } : {}),
      ...(values.subnet ? { subnet: values.subnet } : {}),
      ...(values.bridge ? { bridge: values.bridge } : {}),
      ...(values.force ? { force: true } : {}),
    });
    process.stdout.write(`${result.written ? 'installed' : 'already up to date:'} ${result.path}\n`);
    let missing = false;
    for (const [type, where] of Object.entries(result.plugins)) {
      process.stdout.write(`  ${type.padEnd(16)} ${where}\n`);
      if (where.startsWith('MISSING')) missing = true;
    }
    return missing ? 1 : 0;
  } catch (e) {
    process.stderr.write(`kindling cni install: ${(e as Error).message}\n`);
    return 1;
  }
}
