/** `RUN --mount=type=...,target=...`: parsed and defaulted as BuildKit does. */
import path from 'node:path/posix';
import type { RunMount } from './plan.ts';

export class MountError extends Error {
  override name = 'MountError';
}

/** Splits one CSV record (the --mount value), honouring double quotes as encoding/csv does. */
function csvFields(value: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      if (ch === '"' && value[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) throw new MountError(`bare " in quoted field: ${value}`);
  fields.push(field);
  return fields;
}

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new MountError(`invalid value for ${key}: ${value}`);
}

function parseOctal(key: string, value: string): number {
  if (!/^[0-7]+$/.test(value)) throw new MountError(`invalid value for ${key}: ${value} (expected octal, e.g. 0755)`);
  return parseInt(value, 8);
}

function parseUint(key: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new MountError(`invalid value for ${key}: ${value}`);
  return Number(value);
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** One --mount value; `expand` applies the stage's variables to each field value; `index` numbers ssh sockets. */
export function parseRunMount(value: string, expand: (word: string) => string, workdir: string, index: number): RunMount {
  const fields: Record<string, string> = {};
  let type = 'bind';
  let readonly: boolean | undefined;
  let required = false;
  // As in BuildKit, `required` and `size` are checked against the type given so far (type= comes first).
  const onlyFor = (key: string, types: readonly string[]): void => {
    if (!types.includes(type)) throw new MountError(`unexpected key '${key}' for mount type '${type}'`);
  };
  for (const raw of csvFields(value)) {
    const eq = raw.indexOf('=');
    const key = (eq < 0 ? raw : raw.slice(0, eq)).toLowerCase().trim();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') readonly = true;
      else if (key === 'readwrite' || key === 'rw') readonly = false;
      else if (key === 'required') {
        onlyFor(key, ['secret', 'ssh']);
        required = true;
      } else throw new MountError(`invalid field '${raw}' must be a key=value pair`);
      continue;
    }
    let v = raw.slice(eq + 1);
    // from= takes no variables: the stage graph rejected one that tried.
    if (key !== 'from') v = expand(v);
    switch (key) {
      case 'type':
        if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(v.toLowerCase())) throw new MountError(`unsupported mount type "${v}" (use bind, cache, tmpfs, secret or ssh)`);
        type = v.toLowerCase();
        break;
      case 'target': case 'dst': case 'destination':
        fields.target = v;
        break;
      case 'source': case 'src':
        fields.source = v;
        break;
      case 'readonly': case 'ro':
        readonly = parseBool(key, v);
        break;
      case 'readwrite': case 'rw':
        readonly = !parseBool(key, v);
        break;
      case 'required':
        onlyFor(key, ['secret', 'ssh']);
        required = parseBool(key, v);
        break;
      case 'size':
        onlyFor(key, ['tmpfs']);
        fields.size = v;
        break;
      case 'sharing':
        if (!['shared', 'private', 'locked'].includes(v)) throw new MountError(`unsupported sharing value "${v}" (use shared, private or locked)`);
        fields.sharing = v;
        break;
      case 'from': case 'id': case 'mode': case 'uid': case 'gid': case 'env':
        fields[key] = v;
        break;
      default:
        throw new MountError(`unexpected key '${key}' in '${raw}'`);
    }
  }
  const absolute = (t: string): string => (path.isAbsolute(t) ? path.normalize(t) : path.join('/', workdir, t));
  const target = fields.target !== undefined && fields.target !== '' ? absolute(fields.target) : undefined;
  // A bind, cache or tmpfs mount over / would hide the whole root file system (BuildKit refuses it too).
  if (target === '/' && (type === 'bind' || type === 'cache' || type === 'tmpfs')) throw new MountError(`invalid mount target "/" (from target=${fields.target}): mount below the root, e.g. target=/cache`);
  const mode = fields.mode !== undefined ? parseOctal('mode', fields.mode) : undefined;
  const uid = fields.uid !== undefined ? parseUint('uid', fields.uid) : undefined;
  const gid = fields.gid !== undefined ? parseUint('gid', fields.gid) : undefined;
  if (type !== 'secret' && type !== 'ssh' && type !== 'cache') {
    for (const key of ['mode', 'uid', 'gid']) if (fields[key] !== undefined) throw new MountError(`${key} not allowed for "${type}" type mounts`);
  }
  if (fields.sharing !== undefined && type !== 'cache') throw new MountError(`invalid cache sharing set for ${type} mount`);
  switch (type) {
    case 'secret': {
      if (fields.from !== undefined) throw new MountError("secret mounts can't have a from");
      if (fields.source && fields.id) throw new MountError(`both source and id can't be set (source= names the secret, as id= does: keep one)`);
      const id = fields.source || fields.id || (target ? path.basename(target) : undefined);
      if (id === undefined || id === '') throw new MountError('secret mount needs an id or a target (e.g. --mount=type=secret,id=npmrc)');
      const mount: RunMount = { type: 'secret', id, required, mode: mode ?? 0o400, uid: uid ?? 0, gid: gid ?? 0 };
      if (fields.env !== undefined) mount.env = fields.env;
      if (target !== undefined) mount.target = target;
      else if (fields.env === undefined) mount.target = `/run/secrets/${path.basename(id)}`; // BuildKit: path.Base of the id
      return mount;
    }
    case 'ssh':
      return { type: 'ssh', id: fields.id ?? 'default', target: target ?? `/run/buildkit/ssh_agent.${index}`, required, mode: mode ?? 0o600, uid: uid ?? 0, gid: gid ?? 0 };
    case 'tmpfs': {
      if (!target) throw new MountError('tmpfs mount needs a target (e.g. --mount=type=tmpfs,target=/tmp)');
      const mount: RunMount = { type: 'tmpfs', target };
      if (fields.size !== undefined) {
        // go-units RAMInBytes: binary multipliers, an optional i and b after the unit letter (64m, 1.5GiB).
        const m = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i.exec(fields.size);
        const unit = m ? SIZE_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
        if (!m || unit === undefined) throw new MountError(`invalid size for tmpfs mount: ${fields.size}`);
        mount.sizeBytes = Math.round(Number(m[1]) * unit);
      }
      return mount;
    }
    case 'cache': {
      if (!target) throw new MountError('cache mount needs a target (e.g. --mount=type=cache,target=/root/.cache)');
      const mount: RunMount = { type: 'cache', target, id: fields.id ?? target, sharing: (fields.sharing ?? 'shared') as 'shared', readonly: readonly ?? false };
      if (fields.from !== undefined) mount.from = fields.from;
      if (fields.source !== undefined) mount.source = fields.source;
      if (mode !== undefined) mount.mode = mode;
      if (uid !== undefined) mount.uid = uid;
      if (gid !== undefined) mount.gid = gid;
      return mount;
    }
    default: {
      if (!target) throw new MountError('bind mount needs a target (e.g. --mount=type=bind,source=go.sum,target=go.sum)');
      const mount: RunMount = { type: 'bind', target, source: fields.source ?? '/', readonly: readonly ?? true };
      if (fields.from !== undefined) mount.from = fields.from;
      return mount;
    }
  }
}

/** The `from=` of a mount without expanding anything else (for the stage graph). */
export function mountFrom(value: string): string | undefined {
  try {
    for (const raw of csvFields(value)) {
      const eq = raw.indexOf('=');
      if (eq > 0 && raw.slice(0, eq).toLowerCase().trim() === 'from') return raw.slice(eq + 1);
    }
  } catch {
    return undefined;
  }
  return undefined;
}
