import { Client } from 'ssh2';
import { startTestSshd } from '/work/main/services/provisioner/test/support/test-sshd.ts';
const s = await startTestSshd();
const c = new Client();
await new Promise<void>((res, rej) => { c.once('ready', () => res()); c.once('error', rej); c.connect({ host: s.host, port: s.port, username: 'root', privateKey: s.clientPrivateKey, hostVerifier: () => true }); });
const ex = (cmd: string) => new Promise<string>((res, rej) => c.exec(cmd, (e, ch) => { if (e) return rej(e); let o = ''; ch.on('data', (d: Buffer) => o += d); ch.stderr.on('data', (d: Buffer) => o += d); ch.on('exit', (...a: unknown[]) => o += ' EXIT ' + JSON.stringify(a)); ch.on('close', () => res(o)); }));
console.log(await ex('echo $$; ps -o pid,pgid,sid,comm -p $$; echo $SHELL; env'));
const t: number[] = [];
for (let i = 0; i < 20; i++) { const a = performance.now(); await ex('true'); t.push(performance.now() - a); }
console.log(t.map(x => x.toFixed(1)).join(' '));
console.log(await ex('sh -c "kill -TERM \\$\\$"'));
c.end(); await s.stop();
