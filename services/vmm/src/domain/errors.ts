/**
 * Typed domain errors from @kindling/runtime, which maps them to gRPC status codes in one place;
 * domain code imports them from here so the core has a single seam to the runtime.
 */
export {
  DomainError,
  InvalidArgumentError,
  NotFoundError,
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  UnavailableError,
} from '@kindling/runtime';
