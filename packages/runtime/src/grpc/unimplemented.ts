import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { UnimplementedError } from '../errors.ts';
import { bidiStream, clientStream, serverStream, unary } from './call.ts';

/**
 * An implementation in which every method answers UNIMPLEMENTED, naming the work that will provide it.
 * Services spread their real handlers over it, so nothing pretends to work.
 */
export function unimplementedMethods(definition: ServiceDefinition, pendingWork: string): UntypedServiceImplementation {
  const implementation: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const fail = async (): Promise<never> => {
      throw new UnimplementedError(`${method.path} is not implemented yet: ${pendingWork}`);
    };
    implementation[name] = method.requestStream
      ? method.responseStream
        ? bidiStream(fail)
        : clientStream(fail)
      : method.responseStream
        ? serverStream(fail)
        : unary(fail);
  }
  return implementation;
}
