import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { LinkFacts } from './attachment.ts';

const exec = promisify(execFile);

export const NETNS_DIR = '/var/run/netns';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const netnsPath = (name: string): string => `${NETNS_DIR}/${name}`;

const checkName = (name: string): void => {
  if (!NAME.test(name))
    throw new Error(`network namespace name "${name}" must be letters, digits, . _ - (at most 64)`);
};

export async function netnsExists(name: string): Promise<boolean> {
  return access(netnsPath(name)).then(
    () => true,
    () => false,
  );
}

/** Creates a named network namespace (ip netns add) with loopback up; returns its path. */
export async function createNetns(name: string): Promise<string> {
  checkName(name);
  await exec('ip', ['netns', 'add', name]);
  try {
    await exec('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await exec('ip', ['netns', 'delete', name]).catch(() => undefined);
    throw e;
  }
  return netnsPath(name);
}

/** Deletes a named network namespace; a missing one is fine (idempotent). */
export async function deleteNetns(name: string): Promise<void> {
  checkName(name);
  if (!(await netnsExists(name))) return;
  try {
    await exec('ip', ['netns', 'delete', name]);
  } catch (e) {
    if (await netnsExists(name)) throw e;
  }
}

/** Names from `ip netns list` (first word of each line). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await exec('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/** MAC and MTU of a link inside a netns given by path. */
export async function linkFacts(nsPath: string, ifName: string): Promise<LinkFacts> {
  const { stdout } = await exec('nsenter', [
    `--net=${nsPath}`,
    '--',
    'ip',
    '-j',
    'link',
    'show',
    'dev',
    ifName,
  ]);
  const [link] = JSON.parse(stdout) as { address?: string; mtu?: number }[];
  return { ...(link?.address ? { mac: link.address } : {}), ...(link?.mtu ? { mtu: link.mtu } : {}) };
}
