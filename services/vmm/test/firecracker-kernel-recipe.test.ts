/**
 * The Firecracker guest kernel recipe (baseos/kernel) is checked for syntax only: building a
 * kernel takes far too long for CI. The script must parse (bash -n) and print its usage without
 * side effects; the config fragment must be well-formed and build in everything the guest needs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const dir = fileURLToPath(new URL('../../../baseos/kernel/', import.meta.url));
const script = `${dir}build-firecracker-kernel.sh`;
const fragment = readFileSync(`${dir}firecracker-guest.config`, 'utf8');

/** CONFIG_X → value ('n' for "is not set"), failing on any line that is neither. */
function lintFragment(text: string): Map<string, string> {
  const options = new Map<string, string>();
  text.split('\n').forEach((line, index) => {
    const where = `firecracker-guest.config:${index + 1}`;
    if (line.trim() === '') return;
    const unset = /^# (CONFIG_[A-Z0-9_]+) is not set$/.exec(line);
    const set = /^(CONFIG_[A-Z0-9_]+)=(y|m|-?\d+|0x[0-9a-fA-F]+|"[^"]*")$/.exec(line);
    if (!unset && !set && line.startsWith('#') && !/^#\s*CONFIG_/.test(line)) return; // a comment
    const name = unset?.[1] ?? set?.[1];
    assert.ok(name, `${where}: not a Kconfig line: ${JSON.stringify(line)}`);
    assert.ok(!options.has(name), `${where}: ${name} given twice`);
    options.set(name, unset ? 'n' : (set?.[2] ?? ''));
  });
  return options;
}

describe('Firecracker guest kernel recipe', () => {
  it('script passes bash -n and prints usage without building', () => {
    execFileSync('bash', ['-n', script]);
    const usage = execFileSync('bash', [script, '--help'], { encoding: 'utf8' });
    assert.match(usage, /--out DIR/);
    assert.throws(
      () => execFileSync('bash', [script, '--bogus'], { stdio: 'pipe' }),
      /unknown argument: --bogus/,
    );
  });

  it('script merges the fragment over defconfig + kvm_guest.config and checks it survived', () => {
    const text = readFileSync(script, 'utf8');
    assert.match(text, /make -s x86_64_defconfig/);
    assert.match(text, /merge_config\.sh -m \.config kernel\/configs\/kvm_guest\.config "\$fragment"/);
    assert.match(text, /make -j"\$jobs" vmlinux/);
    assert.match(text, /\/usr\/src\/linux-source-\*\.tar\.xz/);
  });

  it('config fragment is well-formed and builds in what a Firecracker guest needs without an initrd', () => {
    const options = lintFragment(fragment);
    for (const required of [
      'CONFIG_VIRTIO_MMIO',
      'CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES',
      'CONFIG_VIRTIO_BLK',
      'CONFIG_VIRTIO_NET',
      'CONFIG_EXT4_FS',
      'CONFIG_SERIAL_8250',
      'CONFIG_SERIAL_8250_CONSOLE',
      'CONFIG_X86_MPPARSE',
      'CONFIG_ACPI',
      'CONFIG_SERIO_I8042',
      'CONFIG_DEVTMPFS',
    ]) {
      assert.equal(options.get(required), 'y', `${required} must be built in (=y), not a module`);
    }
    assert.ok(![...options.values()].includes('m'), 'no modules: the kernel boots without an initrd');
  });

  it('lint catches malformed lines', () => {
    assert.throws(() => lintFragment('CONFIG_VIRTIO=yes'), /not a Kconfig line/);
    assert.throws(() => lintFragment('CONFIG_A=y\nCONFIG_A=y'), /given twice/);
    assert.throws(() => lintFragment('#CONFIG_A is not set'), /not a Kconfig line/);
  });
});
