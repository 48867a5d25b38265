/** Checks and conversions of image config values: EXPOSE port specs, STOPSIGNAL names, --chmod. */

export class ConfigValueError extends Error {
  override name = 'ConfigValueError';
}

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

function parsePortNumber(text: string, spec: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new ConfigValueError(`invalid containerPort: ${text} (in "${spec}"; ports are 0-65535)`);
  return Number(text);
}

/** `80`, `80/udp`, `8000-8010/tcp`, `127.0.0.1:8080:80` → `port/proto` keys, one per port. */
export function exposedPorts(spec: string): string[] {
  let rest = spec;
  let proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
    if (!PROTOCOLS.has(proto)) throw new ConfigValueError(`invalid proto: ${proto} (in "${spec}"; use tcp, udp or sctp)`);
  }
  const parts = rest.split(':');
  const container = parts[parts.length - 1] as string;
  const [startText, endText, extra] = container.split('-');
  if (extra !== undefined || startText === undefined || startText === '') throw new ConfigValueError(`invalid containerPort: ${container} (in "${spec}")`);
  const start = parsePortNumber(startText, spec);
  const end = endText === undefined ? start : parsePortNumber(endText, spec);
  if (end < start) throw new ConfigValueError(`invalid range specified for container port: ${container} (start is after end)`);
  const out: string[] = [];
  for (let port = start; port <= end; port++) out.push(`${port}/${proto}`);
  return out;
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
  'RTMIN', 'RTMAX',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/** Docker's signal.ParseSignal: a number other than 0, or a Linux signal name with or without SIG. */
export function checkSignal(value: string): void {
  if (/^[+-]?\d+$/.test(value)) {
    if (Number(value) === 0) throw new ConfigValueError(`Invalid signal: ${value}`);
    return;
  }
  const name = value.toUpperCase().replace(/^SIG/, '');
  if (!SIGNALS.has(name)) throw new ConfigValueError(`Invalid signal: ${value} (use a name like SIGTERM or SIGQUIT, or a number)`);
}

/** `--chmod`: an octal mode between 0 and 07777. */
export function parseChmod(value: string): number {
  if (!/^[0-7]+$/.test(value) || parseInt(value, 8) > 0o7777) {
    throw new ConfigValueError(`invalid chmod parameter: "${value}". it should be octal string and between 0 and 07777`);
  }
  return parseInt(value, 8);
}
