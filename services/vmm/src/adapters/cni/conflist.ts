import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { FailedPreconditionError } from '../../domain/errors.ts';

export const DEFAULT_CNI_CONF_DIR = '/etc/cni/conf.d';

export interface CniPluginConf {
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A network configuration list as the CNI spec defines it (a single-plugin .conf is wrapped into one). */
export interface CniNetworkConfigList {
  readonly cniVersion: string;
  readonly name: string;
  readonly disableCheck: boolean;
  readonly plugins: CniPluginConf[];
  /** The file it came from. */
  readonly source: string;
}

const CONF_EXTENSIONS = ['.conflist', '.conf', '.json'];

/** Validates a parsed conflist (or single-plugin conf) and brings it to list form. */
export function toConfigList(raw: unknown, source: string): CniNetworkConfigList {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${source} is not a JSON object`);
  const conf = raw as Record<string, unknown>;
  const name = conf.name;
  if (typeof name !== 'string' || name === '') throw new Error(`${source} has no "name"`);
  const cniVersion = typeof conf.cniVersion === 'string' ? conf.cniVersion : '0.2.0';
  const plugins = Array.isArray(conf.plugins)
    ? conf.plugins
    : typeof conf.type === 'string'
      ? [conf]
      : undefined;
  if (!plugins || plugins.length === 0) throw new Error(`${source} (network "${name}") lists no plugins`);
  plugins.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof (p as Record<string, unknown>).type !== 'string')
      throw new Error(`${source} (network "${name}"): plugins[${i}] has no "type"`);
  });
  return {
    cniVersion,
    name,
    disableCheck: conf.disableCheck === true,
    plugins: plugins as CniPluginConf[],
    source,
  };
}

/**
 * Finds the network called `name` among the config files in confDir, in lexical file order as libcni
 * does. Missing dir or name is the operator's setup to fix, hence FAILED_PRECONDITION naming the dir.
 */
export async function loadNetworkConfigList(
  name: string,
  confDir = DEFAULT_CNI_CONF_DIR,
): Promise<CniNetworkConfigList> {
  let files: string[];
  try {
    files = (await readdir(confDir)).filter((f) => CONF_EXTENSIONS.includes(path.extname(f))).sort();
  } catch {
    throw new FailedPreconditionError(
      `CNI config dir ${confDir} does not exist or is unreadable, so network "${name}" is unknown: ` +
        `create it with \`kindling cni install --dir ${confDir}\``,
    );
  }
  const seen: string[] = [];
  const broken: string[] = [];
  for (const file of files) {
    const full = path.join(confDir, file);
    try {
      const list = toConfigList(JSON.parse(await readFile(full, 'utf8')), full);
      if (list.name === name) return list;
      seen.push(list.name);
    } catch (e) {
      broken.push(`${file}: ${(e as Error).message}`);
    }
  }
  throw new FailedPreconditionError(
    `no CNI network "${name}" in ${confDir} (networks there: ${seen.join(', ') || 'none'}` +
      `${broken.length ? `; unreadable: ${broken.join('; ')}` : ''}): ` +
      `install one with \`kindling cni install --dir ${confDir}\` or pick an existing network`,
  );
}
