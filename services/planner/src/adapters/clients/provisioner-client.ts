import {
  ProvisionerServiceClient,
  type ExecRequest,
  type ExitStatus,
  type OutputChunk,
  type PutFilesRequest,
  type PutFilesResponse,
  type SshTarget,
} from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { createServiceClient, retryWhilePeerAway, streamCall, unaryCall, InternalError, type TlsFiles } from '@kindling/runtime';
import type { BuildGuest } from '../../ports/build-services.ts';

const service = 'provisioner';
// A provisioner restart loses its SSH sessions (the step running in one fails), but the next calls
// must not fail for the moments it takes to come back: they wait for it, up to 30 s.
const whileAway = <T>(call: () => Promise<T>, signal?: AbortSignal, unsentOnly = false): Promise<T> =>
  retryWhilePeerAway(call, { ...(signal ? { signal } : {}), unsentOnly });

export class GrpcBuildGuest implements BuildGuest {
  private readonly client: ProvisionerServiceClient;

  constructor(address: string, tls?: TlsFiles) {
    this.client = createServiceClient(ProvisionerServiceClient, address, tls);
  }

  async waitReady(target: SshTarget, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const timeout = { seconds: String(Math.ceil(timeoutMs / 1000)), nanos: 0 };
    await whileAway(() => unaryCall<unknown>(service, (cb) => this.client.waitReady({ target, timeout }, cb), signal), signal);
  }

  async exec(request: ExecRequest, onOutput: (chunk: OutputChunk) => void, signal: AbortSignal): Promise<ExitStatus> {
    let exit: ExitStatus | undefined;
    // a command must not run twice: repeated only when the call never reached the provisioner
    const run = () =>
      streamCall(
        service,
        this.client.exec(request),
        (response) => {
          if (response.event?.$case === 'output') onOutput(response.event.value);
          else if (response.event?.$case === 'exit') exit = response.event.value;
        },
        signal,
      );
    await whileAway(run, signal, true);
    if (!exit) throw new InternalError('provisioner: Exec stream ended without an exit status');
    return exit;
  }

  async putFiles(request: PutFilesRequest, signal: AbortSignal): Promise<PutFilesResponse> {
    return whileAway(() => unaryCall<PutFilesResponse>(service, (cb) => this.client.putFiles(request, cb), signal), signal, true);
  }

  async closeSession(sessionId: string): Promise<void> {
    await whileAway(() => unaryCall<unknown>(service, (cb) => this.client.closeSession({ sessionId }, cb)));
  }

  close(): void {
    this.client.close();
  }
}
