/**
 * Test support: a reflection client that resolves types the way grpcurl does — fetch the file that
 * defines a symbol, then every dependency by file name, and build a registry that must link. A server
 * that serves proto-loader descriptors (no dependency list, renamed files) fails here as grpcurl would.
 */
import { create, createFileRegistry, type FileRegistry } from '@bufbuild/protobuf';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import {
  ServerReflectionClient,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '@kindling/proto/gen/grpc/reflection/v1/reflection.ts';

export class ReflectionTestClient {
  private readonly client: ServerReflectionClient;

  constructor(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()) {
    this.client = new ServerReflectionClient(address, channelCredentials);
  }

  private async ask(request: ServerReflectionRequest['messageRequest']): Promise<ServerReflectionResponse> {
    return new Promise((resolve, reject) => {
      const stream = this.client.serverReflectionInfo();
      stream.once('data', (response: ServerReflectionResponse) => {
        stream.end();
        resolve(response);
      });
      stream.once('error', reject);
      stream.write({ host: '', messageRequest: request });
    });
  }

  async listServices(): Promise<string[]> {
    const response = await this.ask({ $case: 'listServices', value: '' });
    if (response.messageResponse?.$case !== 'listServicesResponse') throw new Error('no list_services answer');
    return response.messageResponse.value.service.map((s) => s.name);
  }

  private async files(request: ServerReflectionRequest['messageRequest']): Promise<FileDescriptorProto[]> {
    const response = await this.ask(request);
    const answer = response.messageResponse;
    if (answer?.$case === 'errorResponse') throw new Error(`reflection error ${answer.value.errorCode}: ${answer.value.errorMessage}`);
    if (answer?.$case !== 'fileDescriptorResponse') throw new Error('no file descriptor answer');
    return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  }

  /** grpcurl's `describe <symbol>`: the file of the symbol plus all dependencies, linked. */
  async resolveSymbol(symbol: string): Promise<FileRegistry> {
    const known = new Map<string, FileDescriptorProto>();
    const pending: FileDescriptorProto[] = await this.files({ $case: 'fileContainingSymbol', value: symbol });
    while (pending.length > 0) {
      const file = pending.shift()!;
      if (known.has(file.name)) continue;
      known.set(file.name, file);
      for (const dependency of file.dependency) {
        if (!known.has(dependency)) pending.push(...(await this.files({ $case: 'fileByFilename', value: dependency })));
      }
    }
    // Registries link files in dependency order, whatever order the server sent them in.
    const ordered: FileDescriptorProto[] = [];
    const visit = (file: FileDescriptorProto): void => {
      if (ordered.includes(file)) return;
      for (const dependency of file.dependency) {
        const found = known.get(dependency);
        if (!found) throw new Error(`${file.name} imports ${dependency}, which reflection did not serve`);
        visit(found);
      }
      ordered.push(file);
    };
    for (const file of known.values()) visit(file);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  }

  close(): void {
    this.client.close();
  }
}
