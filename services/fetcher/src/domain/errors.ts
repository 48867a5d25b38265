// Domain errors come from the shared runtime, which maps them to gRPC status codes in one place.
export {
  AlreadyExistsError,
  CancelledError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
} from '@kindling/runtime';
