// kindling-tap: a chained CNI plugin doing what tc-redirect-tap does, for hosts where that binary is
// not packaged. In the VM's netns it creates a tap beside CNI_IFNAME (the veth end) and redirects every
// frame between the two with tc mirred, so a VMM on the tap is on the veth's network with the veth's
// MAC and IP. The result adds the tap (sandbox = netns) and the VM's pseudo-interface (sandbox =
// container id, mac = the veth's) with the VM's IPs, the same shape tc-redirect-tap reports.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import process from 'node:process';

const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

class PluginError extends Error {
  constructor(code, msg, details = '') {
    super(msg);
    this.code = code;
    this.details = details;
  }
}

const env = (name, required = true) => {
  const v = process.env[name] ?? '';
  if (required && v === '') throw new PluginError(4, `${name} is not set`);
  return v;
};

function cniArgs() {
  const out = {};
  for (const pair of (process.env.CNI_ARGS ?? '').split(';')) {
    if (!pair) continue;
    const i = pair.indexOf('=');
    if (i <= 0) throw new PluginError(4, `CNI_ARGS entry "${pair}" is not KEY=VALUE`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

/** Runs a command inside the netns; returns stdout, or throws with its stderr. */
function inNetns(netns, argv, { allowFail = false } = {}) {
  try {
    return execFileSync('nsenter', [`--net=${netns}`, '--', ...argv], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    if (allowFail) return null;
    throw new PluginError(100, `${argv.join(' ')} failed in ${netns}`, String(e.stderr ?? e.message).trim());
  }
}

function link(netns, name) {
  const out = inNetns(netns, ['ip', '-j', 'link', 'show', 'dev', name], { allowFail: true });
  return out ? JSON.parse(out)[0] : undefined;
}

const hasIngress = (netns, dev) =>
  (inNetns(netns, ['tc', 'qdisc', 'show', 'dev', dev, 'ingress'], { allowFail: true }) ?? '').includes(
    'ingress',
  );

function redirect(netns, from, to) {
  // This kernel family may lack cls_matchall; "u32 match u8 0 0" matches every frame just as well.
  inNetns(netns, [
    'tc',
    'filter',
    'add',
    'dev',
    from,
    'parent',
    'ffff:',
    'protocol',
    'all',
    'u32',
    'match',
    'u8',
    '0',
    '0',
    'action',
    'mirred',
    'egress',
    'redirect',
    'dev',
    to,
  ]);
}

function hasRedirect(netns, from, to) {
  const out =
    inNetns(netns, ['tc', 'filter', 'show', 'dev', from, 'parent', 'ffff:'], { allowFail: true }) ?? '';
  return out.includes(`mirred`) && out.includes(`device ${to}`);
}

function tapNameFor(conf, args) {
  const name = args.TC_REDIRECT_TAP_NAME ?? conf.tapName ?? 'tap0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name))
    throw new PluginError(7, `tap name "${name}" is not a valid interface name`);
  return name;
}

/** The VM pseudo-interface (sandbox = container id) of a previous result, if any. */
const vmInterface = (result, containerId) =>
  (result?.interfaces ?? []).find((i) => i.sandbox === containerId);

// 1.x results dropped ips[].version.
const withoutVersion = (ip) => Object.fromEntries(Object.entries(ip).filter(([k]) => k !== 'version'));

function add(conf, args) {
  const netns = env('CNI_NETNS');
  const ifName = env('CNI_IFNAME');
  const containerId = env('CNI_CONTAINERID');
  const prev = conf.prevResult;
  if (!prev)
    throw new PluginError(
      7,
      'kindling-tap must be chained after a plugin that creates the interface (no prevResult)',
    );
  if (!existsSync(netns)) throw new PluginError(100, `netns ${netns} does not exist`);
  const veth = link(netns, ifName);
  if (!veth)
    throw new PluginError(
      100,
      `interface ${ifName} not found in ${netns}: the previous plugins did not create it`,
    );
  const tap = tapNameFor(conf, args);
  const owner = [];
  if (args.TC_REDIRECT_TAP_UID) owner.push('user', args.TC_REDIRECT_TAP_UID);
  if (args.TC_REDIRECT_TAP_GID) owner.push('group', args.TC_REDIRECT_TAP_GID);
  inNetns(netns, ['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap', ...owner]);
  try {
    inNetns(netns, ['ip', 'link', 'set', 'dev', tap, 'mtu', String(veth.mtu), 'up']);
    inNetns(netns, ['tc', 'qdisc', 'add', 'dev', ifName, 'ingress']);
    inNetns(netns, ['tc', 'qdisc', 'add', 'dev', tap, 'ingress']);
    redirect(netns, ifName, tap);
    redirect(netns, tap, ifName);
  } catch (e) {
    inNetns(netns, ['tc', 'qdisc', 'del', 'dev', ifName, 'ingress'], { allowFail: true });
    inNetns(netns, ['ip', 'link', 'del', 'dev', tap], { allowFail: true });
    throw e;
  }
  const tapLink = link(netns, tap);
  const interfaces = [...(prev.interfaces ?? [])];
  const vethIndex = interfaces.findIndex((i) => i.name === ifName && i.sandbox === netns);
  interfaces.push({ name: tap, mac: tapLink?.address ?? '', sandbox: netns });
  interfaces.push({ name: tap, mac: veth.address, sandbox: containerId });
  const vmIndex = interfaces.length - 1;
  const legacy = /^0\./.test(conf.cniVersion ?? '');
  const vmIps = (prev.ips ?? [])
    .filter((ip) => vethIndex < 0 || ip.interface === vethIndex || ip.interface === undefined)
    .map((ip) => ({ ...ip, interface: vmIndex }));
  return {
    ...prev,
    cniVersion: conf.cniVersion,
    interfaces,
    ips: [...(prev.ips ?? []), ...vmIps.map((ip) => (legacy ? ip : withoutVersion(ip)))],
  };
}

function del(conf, args) {
  const netns = process.env.CNI_NETNS ?? '';
  const ifName = env('CNI_IFNAME');
  if (!netns || !existsSync(netns)) return; // the netns is gone, and everything we made lived in it
  if (link(netns, ifName) && hasIngress(netns, ifName))
    inNetns(netns, ['tc', 'qdisc', 'del', 'dev', ifName, 'ingress']);
  let tap = vmInterface(conf.prevResult, env('CNI_CONTAINERID'))?.name;
  try {
    tap ??= tapNameFor(conf, args);
  } catch {
    return; // a tap by that name could never have been created
  }
  if (link(netns, tap)) inNetns(netns, ['ip', 'link', 'del', 'dev', tap]);
}

function check(conf, args) {
  const netns = env('CNI_NETNS');
  const ifName = env('CNI_IFNAME');
  if (!existsSync(netns)) throw new PluginError(100, `netns ${netns} does not exist`);
  const vm = vmInterface(conf.prevResult, env('CNI_CONTAINERID'));
  if (!vm) throw new PluginError(7, 'prevResult has no VM interface from kindling-tap');
  const tap = vm.name ?? tapNameFor(conf, args);
  if (!link(netns, tap)) throw new PluginError(100, `tap ${tap} is missing in ${netns}`);
  for (const [from, to] of [
    [ifName, tap],
    [tap, ifName],
  ]) {
    if (!hasRedirect(netns, from, to))
      throw new PluginError(100, `tc redirect ${from} → ${to} is missing in ${netns}`);
  }
}

function main() {
  const command = env('CNI_COMMAND');
  if (command === 'VERSION') {
    process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED }));
    return;
  }
  let conf;
  try {
    conf = JSON.parse(readFileSync(0, 'utf8'));
  } catch (e) {
    throw new PluginError(6, 'network config on stdin is not JSON', e.message);
  }
  if (!SUPPORTED.includes(conf.cniVersion))
    throw new PluginError(1, `kindling-tap does not support cniVersion ${conf.cniVersion}`);
  const args = cniArgs();
  if (command === 'ADD') process.stdout.write(JSON.stringify(add(conf, args)));
  else if (command === 'DEL') del(conf, args);
  else if (command === 'CHECK') check(conf, args);
  else throw new PluginError(4, `unknown CNI_COMMAND ${command}`);
}

try {
  main();
} catch (e) {
  const code = e instanceof PluginError ? e.code : 999;
  process.stdout.write(
    JSON.stringify({ cniVersion: '1.0.0', code, msg: e.message, details: e.details ?? '' }),
  );
  process.exit(1);
}
