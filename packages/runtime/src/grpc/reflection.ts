/**
 * gRPC server reflection (v1 and v1alpha) served from protoc's own descriptor set. proto-loader's
 * descriptors lose dependency lists and rename files (grpc-node #2595), which breaks grpcurl on any
 * imported type; protoc's FileDescriptorProtos are served byte-for-byte as protoc wrote them.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import type { ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import * as v1 from '@kindling/proto/gen/grpc/reflection/v1/reflection.ts';
import * as v1alpha from '@kindling/proto/gen/grpc/reflection/v1alpha/reflection.ts';

const NOT_FOUND = 5;

/** Symbol and file index over a FileDescriptorSet. */
export class DescriptorIndex {
  private readonly fileBytes = new Map<string, Uint8Array>();
  private readonly dependencies = new Map<string, string[]>();
  private readonly fileOfSymbol = new Map<string, string>();

  constructor(descriptorSet: Uint8Array) {
    for (const file of fromBinary(FileDescriptorSetSchema, descriptorSet).file) this.add(file);
  }

  private add(file: FileDescriptorProto): void {
    this.fileBytes.set(file.name, toBinary(FileDescriptorProtoSchema, file));
    this.dependencies.set(file.name, [...file.dependency]);
    const prefix = file.package === '' ? '' : `${file.package}.`;
    const addMessage = (message: DescriptorProto, scope: string): void => {
      const name = `${scope}${message.name}`;
      this.fileOfSymbol.set(name, file.name);
      for (const field of message.field) this.fileOfSymbol.set(`${name}.${field.name}`, file.name);
      for (const nested of message.nestedType) addMessage(nested, `${name}.`);
      for (const nestedEnum of message.enumType) this.fileOfSymbol.set(`${name}.${nestedEnum.name}`, file.name);
    };
    for (const message of file.messageType) addMessage(message, prefix);
    for (const enumType of file.enumType) {
      this.fileOfSymbol.set(`${prefix}${enumType.name}`, file.name);
      for (const value of enumType.value) this.fileOfSymbol.set(`${prefix}${value.name}`, file.name);
    }
    for (const service of file.service) {
      this.fileOfSymbol.set(`${prefix}${service.name}`, file.name);
      for (const method of service.method) this.fileOfSymbol.set(`${prefix}${service.name}.${method.name}`, file.name);
    }
  }

  hasSymbol(symbol: string): boolean {
    return this.fileOfSymbol.has(symbol);
  }

  /** The file defining symbol, then its transitive dependencies, each once. */
  filesForSymbol(symbol: string): Uint8Array[] | undefined {
    const file = this.fileOfSymbol.get(symbol);
    return file === undefined ? undefined : this.filesWithDependencies(file);
  }

  filesWithDependencies(fileName: string): Uint8Array[] | undefined {
    if (!this.fileBytes.has(fileName)) return undefined;
    const ordered: string[] = [];
    const visit = (name: string): void => {
      if (ordered.includes(name)) return;
      ordered.push(name);
      for (const dep of this.dependencies.get(name) ?? []) visit(dep);
    };
    visit(fileName);
    return ordered.flatMap((name) => {
      const bytes = this.fileBytes.get(name);
      return bytes ? [bytes] : [];
    });
  }
}

type ReflectionRequest = v1.ServerReflectionRequest;
type ReflectionResponse = v1.ServerReflectionResponse;

function answer(index: DescriptorIndex, serviceNames: readonly string[], request: ReflectionRequest): ReflectionResponse {
  const base = { validHost: request.host, originalRequest: request };
  const notFound = (message: string): ReflectionResponse => ({
    ...base,
    messageResponse: { $case: 'errorResponse', value: { errorCode: NOT_FOUND, errorMessage: message } },
  });
  const files = (found: Uint8Array[] | undefined, what: string): ReflectionResponse =>
    found === undefined
      ? notFound(`${what} not found`)
      : { ...base, messageResponse: { $case: 'fileDescriptorResponse', value: { fileDescriptorProto: found.map((b) => Buffer.from(b)) } } };
  const req = request.messageRequest;
  switch (req?.$case) {
    case 'listServices':
      return {
        ...base,
        messageResponse: { $case: 'listServicesResponse', value: { service: serviceNames.map((name) => ({ name })) } },
      };
    case 'fileByFilename':
      return files(index.filesWithDependencies(req.value), `file ${req.value}`);
    case 'fileContainingSymbol':
      return files(index.filesForSymbol(req.value), `symbol ${req.value}`);
    case 'fileContainingExtension':
      return notFound(`extension ${req.value.extensionNumber} of ${req.value.containingType}`);
    case 'allExtensionNumbersOfType':
      return index.hasSymbol(req.value)
        ? {
            ...base,
            messageResponse: {
              $case: 'allExtensionNumbersResponse',
              value: { baseTypeName: req.value, extensionNumber: [] },
            },
          }
        : notFound(`type ${req.value}`);
    default:
      return notFound('empty reflection request');
  }
}

function handler(index: DescriptorIndex, serviceNames: readonly string[]) {
  return (call: ServerDuplexStream<ReflectionRequest, ReflectionResponse>): void => {
    call.on('data', (request: ReflectionRequest) => call.write(answer(index, serviceNames, request)));
    call.on('end', () => call.end());
    call.on('error', () => call.end());
  };
}

export interface ReflectionRegistration {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

/** Both reflection versions: grpcurl speaks v1 and falls back to v1alpha. */
export function reflectionServices(descriptorSet: Uint8Array, serviceNames: readonly string[]): ReflectionRegistration[] {
  const index = new DescriptorIndex(descriptorSet);
  const missing = serviceNames.filter((name) => !index.hasSymbol(name));
  if (missing.length > 0) throw new Error(`reflection: services not in the descriptor set: ${missing.join(', ')}`);
  const names = [...serviceNames, 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'];
  return [
    {
      definition: v1.ServerReflectionService as ServiceDefinition,
      implementation: { serverReflectionInfo: handler(index, names) },
    },
    {
      definition: v1alpha.ServerReflectionService as ServiceDefinition,
      implementation: { serverReflectionInfo: handler(index, names) },
    },
  ];
}
