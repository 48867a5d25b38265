/**
 * firebuild's `build` flags, for scripts written against it. Those that name what kindling also takes
 * are aliases; those that configure the VM host (binaries, jail, kernel file, SSH user) are settings of
 * the vmm or planner, not of a build, and are refused with where to set them instead.
 */

export const firebuildOptions = {
  dockerfile: { type: 'string' },
  'machine-cni-network-name': { type: 'string' },
  'machine-vmlinux': { type: 'string' },
  'machine-ssh-user': { type: 'string' },
  'binary-firecracker': { type: 'string' },
  'binary-jailer': { type: 'string' },
  'chroot-base': { type: 'string' },
} as const;

export const firebuildUsage = `firebuild flags: --dockerfile (-f), --machine-cni-network-name (--network); --machine-ssh-user root
(kindling builds as root); --machine-vmlinux, --binary-firecracker, --binary-jailer and --chroot-base are
vmm settings and are refused
`;

type FirebuildValues = { [K in keyof typeof firebuildOptions]?: string };

const HOST_SETTINGS: Record<string, string> = {
  'machine-vmlinux': 'the planner boots kernels from the vmm\'s kernel store, not a file: pass --kernel ID (a kernel the vmm lists)',
  'binary-firecracker': 'the firecracker binary is a setting of the vmm host: start the vmm with --binary-firecracker PATH',
  'binary-jailer': 'the jailer binary is a setting of the vmm host: start the vmm with --binary-jailer PATH',
  'chroot-base': 'the jail\'s chroot base is a setting of the vmm host: start the vmm with --firecracker-chroot-base DIR',
};

/**
 * file and network with their firebuild spellings folded in, or the problem (for a usage error): a
 * host setting, an SSH user other than root, or an alias that contradicts its kindling flag.
 */
export function resolveFirebuildFlags(
  values: FirebuildValues & { file: string; network: string },
): { file: string; network: string } | { problem: string } {
  for (const [flag, why] of Object.entries(HOST_SETTINGS)) {
    if (values[flag as keyof FirebuildValues] !== undefined) return { problem: `--${flag} is not a build option: ${why}` };
  }
  const user = values['machine-ssh-user'];
  if (user !== undefined && user !== 'root') {
    return { problem: `--machine-ssh-user "${user}": kindling runs build steps over SSH as root (USER in the Dockerfile sets who RUN runs as)` };
  }
  const merge = (kindlingFlag: string, kindlingValue: string, alias: string, aliasValue: string | undefined): string | { problem: string } => {
    if (aliasValue === undefined || aliasValue === kindlingValue) return kindlingValue;
    if (kindlingValue !== '') return { problem: `--${alias} "${aliasValue}" contradicts --${kindlingFlag} "${kindlingValue}": give one of them` };
    return aliasValue;
  };
  const file = merge('file', values.file, 'dockerfile', values.dockerfile);
  if (typeof file !== 'string') return file;
  const network = merge('network', values.network, 'machine-cni-network-name', values['machine-cni-network-name']);
  if (typeof network !== 'string') return network;
  return { file, network };
}
