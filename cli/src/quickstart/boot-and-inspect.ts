/**
 * Boots an image on the suite's vmm, reaches it over SSH through the provisioner (host key pinned to
 * the one CreateVm returned), runs a probe command until it succeeds, then stops and removes the VM.
 */
import { ProvisionerServiceClient, type ExecResponse } from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { VmmServiceClient, type CreateVmResponse } from '@kindling/proto/gen/kindling/vmm/v1/vmm.ts';
import { createServiceClient, generateSshKeyPair, unaryCall } from '@kindling/runtime';


export async function bootAndInspect(
  suite: { vmm: string; provisioner: string },
  image: string,
  probe: string,
  say: (line: string) => void,
): Promise<string> {
  const vmm = createServiceClient(VmmServiceClient, suite.vmm);
  const provisioner = createServiceClient(ProvisionerServiceClient, suite.provisioner);
  const keys = generateSshKeyPair();
  let vmId: string | undefined;
  try {
    const { vm } = await unaryCall<CreateVmResponse>('vmm', (cb) =>
      vmm.createVm(
        {
          vmId: '',
          start: true,
          spec: { image, kernelId: '', vcpus: 2, memoryMib: 1024, diskSizeBytes: '0', network: '', authorizedKeys: [keys.public], hostname: 'hello', extraKernelArgs: '', labels: {}, buildId: '', transferDiskBytes: '0' },
        },
        cb,
      ),
    );
    vmId = vm!.id;
    say(`VM ${vmId} at ${vm!.network?.guestIp}, host key ${vm!.sshHostKeyFingerprint}`);
    const target = { host: vm!.network!.guestIp, port: 22, user: 'root', privateKey: keys.private, agentSocket: '', hostKey: vm!.sshHostPublicKey, insecureIgnoreHostKey: false, sessionId: vmId };
    await unaryCall<unknown>('provisioner', (cb) => provisioner.waitReady({ target, timeout: { seconds: '180', nanos: 0 } }, cb));
    say('SSH ready');
    for (let attempt = 1; ; attempt++) {
      let output = '';
      let code: number | undefined;
      const stream = provisioner.exec({ target, command: { $case: 'shell', value: { script: probe, shell: [] } }, env: [], user: '', workingDir: '/', buildId: '', stepIndex: 0, reuseShell: false });
      for await (const response of stream as AsyncIterable<ExecResponse>) {
        if (response.event?.$case === 'output') output += Buffer.from(response.event.value.data).toString();
        else if (response.event?.$case === 'exit') code = response.event.value.exitCode;
      }
      if (code === 0) return `--- ${probe} (in the VM booted from ${image})\n${output}`;
      if (attempt >= 30) throw new Error(`"${probe}" still fails in the booted VM (exit ${code}): ${output}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    if (vmId !== undefined) {
      await unaryCall<unknown>('provisioner', (cb) => provisioner.closeSession({ sessionId: vmId! }, cb)).catch(() => {});
      await unaryCall<unknown>('vmm', (cb) => vmm.stopVm({ vmId: vmId!, timeout: { seconds: '30', nanos: 0 }, force: false }, cb)).catch(() => {});
      await unaryCall<unknown>('vmm', (cb) => vmm.deleteVm({ vmId: vmId! }, cb));
      say(`VM ${vmId} stopped and removed`);
    }
    vmm.close();
    provisioner.close();
  }
}
