import {
  ProvisionerServiceClient,
  type ExecRequest,
  type ExitStatus,
  type OutputChunk,
  type PutFilesRequest,
  type PutFilesResponse,
  type SshTarget,
} from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { createServiceClient, streamCall, unaryCall, InternalError, type TlsFiles } from '@kindling/runtime';
import type { BuildGuest } from '../../ports/build-services.ts';

const service = 'provisioner';

export class GrpcBuildGuest implements BuildGuest {
  private readonly client: ProvisionerServiceClient;

  constructor(address: string, tls?: TlsFiles) {
    this.client = createServiceClient(ProvisionerServiceClient, address, tls);
  }

  async waitReady(target: SshTarget, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const timeout = { seconds: String(Math.ceil(timeoutMs / 1000)), nanos: 0 };
    await unaryCall<unknown>(service, (cb) => this.client.waitReady({ target, timeout }, cb), signal);
  }

  async exec(request: ExecRequest, onOutput: (chunk: OutputChunk) => void, signal: AbortSignal): Promise<ExitStatus> {
    let exit: ExitStatus | undefined;
    await streamCall(
      service,
      this.client.exec(request),
      (response) => {
        if (response.event?.$case === 'output') onOutput(response.event.value);
        else if (response.event?.$case === 'exit') exit = response.event.value;
      },
      signal,
    );
    if (!exit) throw new InternalError('provisioner: Exec stream ended without an exit status');
    return exit;
  }

  async putFiles(request: PutFilesRequest, signal: AbortSignal): Promise<PutFilesResponse> {
    return unaryCall<PutFilesResponse>(service, (cb) => this.client.putFiles(request, cb), signal);
  }

  async closeSession(sessionId: string): Promise<void> {
    await unaryCall<unknown>(service, (cb) => this.client.closeSession({ sessionId }, cb));
  }

  close(): void {
    this.client.close();
  }
}
