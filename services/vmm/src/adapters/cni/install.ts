import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CNI_CONF_DIR, toConfigList } from './conflist.ts';
import { DEFAULT_CNI_BIN_DIRS, findPlugin } from './plugin-exec.ts';

/** deploy/cni/ of this checkout: the example conflists kindling ships. */
export const EXAMPLE_CONFLIST_DIR = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  '../../../../../deploy/cni',
);

export interface ConflistInstallOptions {
  readonly dir?: string;
  readonly name?: string;
  /** Override the host-local subnet, e.g. 10.200.0.0/24. */
  readonly subnet?: string;
  /** Override the bridge device name. */
  readonly bridge?: string;
  /** Replace an existing file with different content. */
  readonly force?: boolean;
  readonly binDirs?: readonly string[];
}

export interface ConflistInstallResult {
  readonly path: string;
  readonly written: boolean;
  /** Plugin type → the executable it resolves to, or the reason it cannot be found. */
  readonly plugins: Record<string, string>;
}

type Plugin = Record<string, unknown> & { type: string; ipam?: Record<string, unknown> };

/** Installs an example conflist (default machine-builds) into the CNI config dir, reporting which plugins resolve. */
export async function installConflist(opts: ConflistInstallOptions = {}): Promise<ConflistInstallResult> {
  const name = opts.name ?? 'machine-builds';
  // The name picks a shipped example (and names the file written): never a path.
  const examples = (await readdir(EXAMPLE_CONFLIST_DIR).catch(() => []))
    .filter((file) => file.endsWith('.conflist'))
    .map((file) => file.slice(0, -'.conflist'.length));
  if (!examples.includes(name))
    throw new Error(
      `no example CNI network "${name}" in ${EXAMPLE_CONFLIST_DIR}: kindling ships ${examples.join(', ') || 'none'}`,
    );
  if (opts.subnet !== undefined && !isIpv4Cidr(opts.subnet))
    throw new Error(
      `subnet "${opts.subnet}" is not an IPv4 CIDR like 10.200.0.0/24 (four octets 0-255, prefix 8-30)`,
    );
  if (opts.bridge !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(opts.bridge))
    throw new Error(
      `bridge "${opts.bridge}" is not a Linux interface name: 1-15 letters, digits, _ . - (e.g. kindling0)`,
    );
  const source = path.join(EXAMPLE_CONFLIST_DIR, `${name}.conflist`);
  const conf = JSON.parse(await readFile(source, 'utf8')) as { plugins: Plugin[] };
  toConfigList(conf, source);
  for (const plugin of conf.plugins) {
    if (plugin.type === 'bridge' && opts.bridge) plugin.bridge = opts.bridge;
    if (plugin.ipam?.type === 'host-local' && opts.subnet) plugin.ipam.subnet = opts.subnet;
  }
  const text = JSON.stringify(conf, null, 2) + '\n';
  const dir = opts.dir ?? DEFAULT_CNI_CONF_DIR;
  const target = path.join(dir, `${name}.conflist`);
  const existing = await readFile(target, 'utf8').catch(() => undefined);
  if (existing !== undefined && existing !== text && !opts.force)
    throw new Error(
      `${target} exists with other content: compare it with ${source}, then rerun with --force to replace it`,
    );
  let written = false;
  if (existing !== text) {
    await mkdir(dir, { recursive: true });
    await writeFile(`${target}.tmp`, text, { mode: 0o644 });
    await rename(`${target}.tmp`, target);
    written = true;
  }
  const plugins: Record<string, string> = {};
  for (const plugin of conf.plugins) {
    plugins[plugin.type] = await findPlugin(plugin.type, opts.binDirs ?? DEFAULT_CNI_BIN_DIRS).catch(
      (e: Error) => `MISSING: ${e.message}`,
    );
    if (plugin.ipam?.type && typeof plugin.ipam.type === 'string')
      plugins[plugin.ipam.type] = await findPlugin(
        plugin.ipam.type,
        opts.binDirs ?? DEFAULT_CNI_BIN_DIRS,
      ).catch((e: Error) => `MISSING: ${e.message}`);
  }
  return { path: target, written, plugins };
}

function isIpv4Cidr(text: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (!match) return false;
  const [, a, b, c, d, prefix] = match.map(Number) as number[];
  return [a, b, c, d].every((octet) => octet! <= 255) && prefix! >= 8 && prefix! <= 30;
}
