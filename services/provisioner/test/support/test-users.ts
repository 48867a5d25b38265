// Throw-away users and groups on the test machine (the "guest" of a local test sshd).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestAccounts {
  /** Creates a group; returns its name and gid. */
  group(): Promise<{ name: string; gid: number }>;
  /** Creates a user with its own primary group, optionally in supplementary groups. */
  user(options?: { groups?: string[] }): Promise<{ name: string; uid: number; gid: number; home: string }>;
  remove(): Promise<void>;
}

export function testAccounts(): TestAccounts {
  const users: string[] = [];
  const groups: string[] = [];
  const name = (): string => `kt${randomBytes(4).toString('hex')}`;
  return {
    async group() {
      const group = name();
      await run('groupadd', [group]);
      groups.push(group);
      const { stdout } = await run('getent', ['group', group]);
      return { name: group, gid: Number(stdout.split(':')[2]) };
    },
    async user(options = {}) {
      const user = name();
      const home = `/tmp/${user}-home`;
      await run('useradd', ['-U', '-m', '-d', home, '-s', '/bin/sh', ...(options.groups?.length ? ['-G', options.groups.join(',')] : []), user]);
      users.push(user);
      const { stdout } = await run('getent', ['passwd', user]);
      const fields = stdout.trim().split(':');
      return { name: user, uid: Number(fields[2]), gid: Number(fields[3]), home };
    },
    async remove() {
      for (const user of users.splice(0)) await run('userdel', ['-r', '-f', user]).catch(() => {});
      for (const group of groups.splice(0)) await run('groupdel', [group]).catch(() => {});
    },
  };
}
