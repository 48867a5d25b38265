import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, HelpRequested, loadConfig, setting } from '../src/index.ts';

const schema = {
  host: setting.string('address', '127.0.0.1'),
  port: setting.port('port', 50051),
  insecure: setting.boolean('allow plaintext'),
  driver: setting.oneOf('hypervisor driver', ['qemu', 'firecracker'] as const, 'qemu'),
  stopTimeout: setting.durationMs('stop timeout', 30_000),
  tlsCert: setting.optionalString('certificate'),
};

describe('loadConfig', () => {
  it('takes flags over environment over defaults', () => {
    const config = loadConfig('KINDLING_VMM', schema, ['--port', '7000', '--insecure', '--stop-timeout=5m'], {
      KINDLING_VMM_PORT: '6000',
      KINDLING_VMM_DRIVER: 'firecracker',
    });
    assert.deepEqual(config, { host: '127.0.0.1', port: 7000, insecure: true, driver: 'firecracker', stopTimeout: 300_000, tlsCert: undefined });
  });

  it('names the setting, its variable and the bad value', () => {
    assert.throws(
      () => loadConfig('KINDLING_VMM', schema, ['--port=70000'], {}),
      (e: Error) => e instanceof ConfigError && e.message.includes('--port (KINDLING_VMM_PORT)') && e.message.includes('"70000"'),
    );
    assert.throws(
      () => loadConfig('KINDLING_VMM', schema, [], { KINDLING_VMM_DRIVER: 'kvmtool' }),
      (e: Error) => e instanceof ConfigError && /--driver \(KINDLING_VMM_DRIVER\).*one of qemu, firecracker/.test(e.message),
    );
    assert.throws(
      () => loadConfig('KINDLING_VMM', schema, [], { KINDLING_VMM_STOP_TIMEOUT: 'soon' }),
      (e: Error) => e instanceof ConfigError && /--stop-timeout/.test(e.message),
    );
  });

  it('answers --help (and -h, among other flags) with every setting, its variable and its default', () => {
    const sized = { ...schema, cacheSize: setting.bytes('cache size', 20 * 1024 ** 3), hosts: setting.list('hosts', ['a', 'b']) };
    for (const argv of [['--help'], ['--port', '1', '-h']]) {
      assert.throws(
        () => loadConfig('KINDLING_VMM', sized, argv, {}),
        (e: Error) => {
          assert.ok(e instanceof HelpRequested);
          assert.match(e.usage, /^usage: vmm /);
          assert.match(e.usage, /--port\n\s+port \(KINDLING_VMM_PORT; default 50051\)/);
          assert.match(e.usage, /--stop-timeout\n\s+stop timeout \(KINDLING_VMM_STOP_TIMEOUT; default 30s\)/);
          assert.match(e.usage, /--cache-size\n.*default 20GiB\)/);
          assert.match(e.usage, /--hosts\n.*default a,b\)/);
          assert.match(e.usage, /--tls-cert\n\s+certificate \(KINDLING_VMM_TLS_CERT\)\n/);
          return true;
        },
      );
    }
  });

  it('reads sizes and lists', () => {
    const config = loadConfig('KINDLING_X', { size: setting.bytes('size', 1), hosts: setting.list('hosts', []) }, ['--size=1.5KiB', '--hosts', ' a, ,b '], {});
    assert.deepEqual(config, { size: 1536, hosts: ['a', 'b'] });
    assert.throws(() => loadConfig('KINDLING_X', { size: setting.bytes('size', 1) }, ['--size=lots'], {}), /--size .*expected a size/);
  });

  it('rejects unknown flags, listing the known ones', () => {
    assert.throws(
      () => loadConfig('KINDLING_VMM', schema, ['--prot', '1'], {}),
      (e: Error) => e instanceof ConfigError && /unknown setting --prot; known: --host, --port/.test(e.message),
    );
  });
});
