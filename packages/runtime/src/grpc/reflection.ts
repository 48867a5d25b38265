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
  type EnumDescriptorProto,
  type FieldDescriptorProto,
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
  /** Extended message full name → extension field number → file declaring the extension. */
  private readonly extensions = new Map<string, Map<number, string>>();

  constructor(descriptorSet: Uint8Array) {
    for (const file of fromBinary(FileDescriptorSetSchema, descriptorSet).file) this.add(file);
  }

  private add(file: FileDescriptorProto): void {
    this.fileBytes.set(file.name, toBinary(FileDescriptorProtoSchema, file));
    this.dependencies.set(file.name, [...file.dependency]);
    const prefix = file.package === '' ? '' : `${file.package}.`;
    const symbol = (name: string): void => void this.fileOfSymbol.set(name, file.name);
    // Enum values are scoped beside their enum, not inside it (protobuf's C++ scoping rule).
    const addEnum = (enumType: EnumDescriptorProto, scope: string): void => {
      symbol(`${scope}${enumType.name}`);
      for (const value of enumType.value) symbol(`${scope}${value.name}`);
    };
    const addExtensions = (extensions: readonly FieldDescriptorProto[], scope: string): void => {
      for (const extension of extensions) {
        symbol(`${scope}${extension.name}`);
        const extended = extension.extendee.replace(/^\./, '');
        const numbers = this.extensions.get(extended) ?? new Map<number, string>();
        numbers.set(extension.number, file.name);
        this.extensions.set(extended, numbers);
      }
    };
    const addMessage = (message: DescriptorProto, scope: string): void => {
      const name = `${scope}${message.name}`;
      symbol(name);
      for (const field of message.field) symbol(`${name}.${field.name}`);
      for (const oneof of message.oneofDecl) symbol(`${name}.${oneof.name}`);
      for (const nested of message.nestedType) addMessage(nested, `${name}.`);
      for (const nestedEnum of message.enumType) addEnum(nestedEnum, `${name}.`);
      addExtensions(message.extension, `${name}.`);
    };
    for (const message of file.messageType) addMessage(message, prefix);
    for (const enumType of file.enumType) addEnum(enumType, prefix);
    addExtensions(file.extension, prefix);
    for (const service of file.service) {
      symbol(`${prefix}${service.name}`);
      for (const method of service.method) symbol(`${prefix}${service.name}.${method.name}`);
    }
  }

  /** The extension numbers declared for a message type (empty when it has none). */
  extensionNumbersOf(typeName: string): number[] {
    return [...(this.extensions.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** The file declaring an extension of typeName with that number, then its dependencies. */
  filesForExtension(typeName: string, number: number): Uint8Array[] | undefined {
    const file = this.extensions.get(typeName)?.get(number);
    return file === undefined ? undefined : this.filesWithDependencies(file);
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
      return files(
        index.filesForExtension(req.value.containingType, req.value.extensionNumber),
        `extension ${req.value.extensionNumber} of ${req.value.containingType}`,
      );
    case 'allExtensionNumbersOfType':
      return index.hasSymbol(req.value)
        ? {
            ...base,
            messageResponse: {
              $case: 'allExtensionNumbersResponse',
              value: { baseTypeName: req.value, extensionNumber: index.extensionNumbersOf(req.value) },
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
