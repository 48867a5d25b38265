// The provisioner throws the shared typed errors; the runtime maps each to its gRPC status.
export {
  DomainError,
  InvalidArgumentError,
  NotFoundError,
  FailedPreconditionError,
  UnavailableError,
  DeadlineExceededError,
  CancelledError,
  PermissionDeniedError,
  InternalError,
} from '@kindling/runtime';
