/**
 * @kindling/proto: the gRPC contracts. Generated code lives in ./gen and is imported by path, e.g.
 * `@kindling/proto/gen/kindling/vmm/v1/vmm.ts`. The descriptor set is protoc's own output (with its
 * dependency lists intact), which server reflection serves so grpcurl can resolve imported types.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const descriptorSetPath = fileURLToPath(new URL('./gen/descriptor_set.binpb', import.meta.url));

export function readDescriptorSet(): Buffer {
  return readFileSync(descriptorSetPath);
}
