import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';

export type Acceleration = 'kvm' | 'tcg';
export type AccelerationSetting = Acceleration | 'auto';

/**
 * Decides once whether KVM can boot a stock guest here. A paravirtual KVM (kvm_pvm) exposes /dev/kvm
 * but its emulator dies on instructions every stock kernel uses (docs/vmm.md, the --accel setting), and without VMX/SVM
 * there is no hardware virtualisation to speak of; both mean TCG.
 */
export class AccelerationProbe {
  private answer: Promise<{ accel: Acceleration; why: string }> | undefined;

  constructor(
    private readonly setting: AccelerationSetting,
    private readonly paths = {
      kvmDevice: '/dev/kvm',
      pvmModule: '/sys/module/kvm_pvm',
      cpuinfo: '/proc/cpuinfo',
    },
  ) {}

  resolve(): Promise<{ accel: Acceleration; why: string }> {
    if (this.setting !== 'auto') return Promise.resolve({ accel: this.setting, why: 'configured' });
    this.answer ??= this.probe();
    return this.answer;
  }

  private async probe(): Promise<{ accel: Acceleration; why: string }> {
    const usable = await access(this.paths.kvmDevice, constants.R_OK | constants.W_OK).then(
      () => true,
      () => false,
    );
    if (!usable) return { accel: 'tcg', why: `${this.paths.kvmDevice} is missing or not accessible` };
    const pvm = await access(this.paths.pvmModule).then(
      () => true,
      () => false,
    );
    if (pvm)
      return {
        accel: 'tcg',
        why: `${this.paths.pvmModule} exists: paravirtual KVM cannot boot stock kernels`,
      };
    const cpuinfo = await readFile(this.paths.cpuinfo, 'utf8').catch(() => '');
    if (!/\b(vmx|svm)\b/.test(cpuinfo)) return { accel: 'tcg', why: 'the CPU reports neither vmx nor svm' };
    return { accel: 'kvm', why: `${this.paths.kvmDevice} is usable and the CPU has hardware virtualisation` };
  }
}

/**
 * Host TSC frequency in kHz, for the guest's tsc_early_khz= under TCG: microvm has no HPET or ACPI PM
 * timer, and PIT calibration fails on a loaded host, after which the guest kernel can hang at boot.
 * Under TCG the guest's TSC counts at the host's rate, so the host's figure is the right one.
 */
export async function hostTscKhz(cpuinfoPath = '/proc/cpuinfo'): Promise<number | undefined> {
  const cpuinfo = await readFile(cpuinfoPath, 'utf8').catch(() => '');
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}
