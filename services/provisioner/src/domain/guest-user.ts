// Docker's USER resolution (moby/sys/user GetExecUser) against the guest's own
// /etc/passwd and /etc/group, so `USER app`, `USER 1000`, `USER app:staff` and
// `USER 1000:1000` mean in the VM what they mean in a container.
import { InvalidArgumentError, NotFoundError } from './errors.ts';

export interface GuestUser {
  uid: number;
  gid: number;
  /** Supplementary groups; empty when the spec named a group explicitly, as Docker does. */
  groups: number[];
  home: string;
  name?: string;
}

export interface UserSpec {
  user: string;
  group?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parseUserSpec(spec: string): UserSpec {
  const [user = '', group, extra] = spec.split(':');
  if (!user || extra !== undefined || group === '') {
    throw new InvalidArgumentError(`USER "${spec}" is not valid: use name, uid, name:group or uid:gid`);
  }
  return group === undefined ? { user } : { user, group };
}

export function resolveGuestUser(spec: string, passwd: string, group: string): GuestUser {
  const parsed = parseUserSpec(spec);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);
  const numericUid = asId(parsed.user);
  const entry = users.find((u) => u.name === parsed.user || (numericUid !== undefined && u.uid === numericUid));
  if (!entry && numericUid === undefined) {
    throw new NotFoundError(
      `USER "${spec}": unable to find user ${parsed.user}: no matching entries in the guest's /etc/passwd; create it in an earlier RUN (useradd) or use a numeric uid`,
    );
  }
  const resolved: GuestUser = {
    uid: entry?.uid ?? (numericUid as number),
    gid: entry?.gid ?? 0,
    groups: [],
    home: entry?.home ?? '/',
    ...(entry ? { name: entry.name } : {}),
  };
  if (parsed.group !== undefined) {
    const numericGid = asId(parsed.group);
    const match = groups.find((g) => g.name === parsed.group || (numericGid !== undefined && g.gid === numericGid));
    if (!match && numericGid === undefined) {
      throw new NotFoundError(
        `USER "${spec}": unable to find group ${parsed.group}: no matching entries in the guest's /etc/group; create it in an earlier RUN (groupadd) or use a numeric gid`,
      );
    }
    resolved.gid = match?.gid ?? (numericGid as number);
  } else if (entry) {
    const member = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
    resolved.groups = [...new Set([resolved.gid, ...member])];
  }
  return resolved;
}

/**
 * `--chown` resolution as BuildKit does it (llbsolver/file readUser): a numeric user is uid and gid
 * both (`--chown=1000` is 1000:1000 whatever passwd says), a name takes its primary group, and a
 * numeric group is taken as it is.
 */
export function resolveOwner(spec: string, passwd: string, group: string): { uid: number; gid: number } {
  const parsed = parseUserSpec(spec);
  const numericUid = asId(parsed.user);
  const named = numericUid === undefined ? resolveGuestUser(parsed.user, passwd, group) : undefined;
  const uid = named?.uid ?? (numericUid as number);
  if (parsed.group === undefined) return { uid, gid: named?.gid ?? uid };
  const numericGid = asId(parsed.group);
  if (numericGid !== undefined) return { uid, gid: numericGid };
  const match = parseGroup(group).find((g) => g.name === parsed.group);
  if (!match) {
    throw new NotFoundError(
      `--chown "${spec}": unable to find group ${parsed.group}: no matching entries in the guest's /etc/group; create it in an earlier RUN (groupadd) or use a numeric gid`,
    );
  }
  return { uid, gid: match.gid };
}

function asId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value <= 0xffffffff ? value : undefined;
}

function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 7 || line.startsWith('#')) continue;
    const uid = asId(fields[2] ?? '');
    const gid = asId(fields[3] ?? '');
    if (uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0] ?? '', uid, gid, home: fields[5] || '/' });
  }
  return entries;
}

function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 4 || line.startsWith('#')) continue;
    const gid = asId(fields[2] ?? '');
    if (gid === undefined) continue;
    entries.push({ name: fields[0] ?? '', gid, members: (fields[3] ?? '').split(',').filter(Boolean) });
  }
  return entries;
}
