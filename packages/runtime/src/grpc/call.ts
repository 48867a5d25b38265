/**
 * Wrappers that turn promise-based handlers into grpc-js handlers. Each wrapper gives the handler an
 * AbortSignal that fires on client cancellation or deadline, a logger carrying the build/vm id of the
 * request, logs one line per RPC, records its duration in kindling_rpc_duration_seconds, and maps
 * errors through status.ts. The handler runs with a SERVER span active, child of the caller's
 * traceparent (tracing.ts); its logger carries trace_id and span_id.
 */
import type {
  Metadata,
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createLogger, type Logger } from '../logger.ts';
import { CancelledError, DeadlineExceededError, DomainError } from '../errors.ts';
import { toStatusFailure, statusName } from './status.ts';
import { observeRpc } from '../metrics/registry.ts';
import { context, SpanKind, trace, type Context } from '@opentelemetry/api';
import { endRpcSpan, extractTraceContext, rpcAttributes, startSpan, traceFields } from './tracing.ts';

export interface CallContext {
  /** Fires when the client cancels or the deadline passes; pass it to every long await. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly metadata: Metadata;
  readonly deadline?: Date;
}

type AnyCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerReadableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

/** What the server a call arrived on tells its wrappers: its logger, and whether it is shutting down. */
export interface CallServerContext {
  readonly logger: Logger;
  readonly stopping: () => boolean;
}

// Per call, not per process: several servers in one process (tests, a single-process mode) must each
// log under their own service name.
const serverOfCall = new WeakMap<object, CallServerContext>();

/** Wraps every method of an implementation so its calls log through the server's logger. */
export function bindCallServer(implementation: UntypedServiceImplementation, server: CallServerContext): UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(implementation).map(([name, handler]) => [
      name,
      (call: object, ...rest: unknown[]) => {
        serverOfCall.set(call, server);
        return (handler as (call: object, ...rest: unknown[]) => unknown)(call, ...rest);
      },
    ]),
  ) as UntypedServiceImplementation;
}

let fallbackLogger: Logger | undefined;

// Only these named id fields are logged, never the whole request (SshTarget carries a private key).
const idFields = ['buildId', 'vmId', 'contextId', 'sessionId'] as const;

function idsOf(request: unknown): Record<string, string> {
  const ids: Record<string, string> = {};
  if (typeof request !== 'object' || request === null) return ids;
  const record = request as Record<string, unknown>;
  // The provisioner names its guest in target (SshTarget.session_id, normally the VM id).
  const target = typeof record.target === 'object' && record.target !== null ? (record.target as Record<string, unknown>) : {};
  for (const field of idFields) {
    const value = record[field] ?? target[field];
    if (typeof value === 'string' && value !== '') ids[field] = value;
  }
  return ids;
}

function deadlineOf(call: AnyCall): Date | undefined {
  const deadline = call.getDeadline();
  if (deadline instanceof Date) return Number.isFinite(deadline.getTime()) ? deadline : undefined;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}

interface Tracked {
  ctx: CallContext;
  /** The OpenTelemetry context the handler runs in: its SERVER span, under the caller's traceparent. */
  traceContext: Context;
  finish(error: unknown): ReturnType<typeof toStatusFailure> | undefined;
}

function track(call: AnyCall, request: unknown): Tracked {
  const method = call.getPath();
  const started = performance.now();
  const server = serverOfCall.get(call);
  const parent = extractTraceContext(call.metadata);
  const span = startSpan(method, { kind: SpanKind.SERVER, attributes: rpcAttributes(method) }, parent);
  const traceContext = trace.setSpan(parent, span);
  const log = (server?.logger ?? (fallbackLogger ??= createLogger('kindling'))).child({ method, ...idsOf(request), ...traceFields(span) });
  const controller = new AbortController();
  const deadline = deadlineOf(call);
  (call as ServerUnaryCall<unknown, unknown>).on('cancelled', () => {
    // Node timers may fire a few ms before Date.now() reaches the deadline grpc-js computed.
    const late = deadline !== undefined && Date.now() >= deadline.getTime() - 25;
    controller.abort(
      late
        ? new DeadlineExceededError(`${method}: deadline exceeded`)
        : server?.stopping()
          ? new CancelledError(`${method}: cancelled because the server is shutting down and its grace period ran out`)
          : new CancelledError(`${method}: cancelled by the client`),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  if (deadline !== undefined) {
    timer = setTimeout(
      () => controller.abort(new DeadlineExceededError(`${method}: deadline exceeded`)),
      Math.max(0, deadline.getTime() - Date.now()),
    );
    timer.unref();
  }
  const ctx: CallContext = { signal: controller.signal, log, metadata: call.metadata, ...(deadline ? { deadline } : {}) };
  return {
    ctx,
    traceContext,
    finish(error) {
      if (timer) clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const durationMs = Math.round(seconds * 1000);
      if (error === undefined) {
        log.info({ code: 'OK', durationMs }, 'rpc');
        observeRpc(method, 'OK', seconds);
        endRpcSpan(span, 0);
        return undefined;
      }
      // A handler that rethrows its library's own abort error (fetch, streams, child_process) after the
      // client cancelled or the deadline passed failed because of that, not unexpectedly.
      const cause = !(error instanceof DomainError) && controller.signal.aborted ? (controller.signal.reason as unknown) : error;
      const failure = toStatusFailure(cause);
      const code = statusName(failure.serviceError.code);
      observeRpc(method, code, seconds);
      endRpcSpan(span, failure.serviceError.code, failure.serviceError.details);
      if (failure.unexpected) log.error({ code, durationMs, err: error }, 'rpc failed unexpectedly');
      else log.info({ code, durationMs, error: error instanceof Error ? error.message : String(error) }, 'rpc');
      return failure;
    },
  };
}

export function unary<Req, Res>(handler: (request: Req, ctx: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const tracked = track(call as AnyCall, call.request);
    context.with(tracked.traceContext, () => handler(call.request, tracked.ctx)).then(
      (response) => {
        tracked.finish(undefined);
        callback(null, response);
      },
      (error: unknown) => callback(tracked.finish(error)!.serviceError),
    );
  };
}

/**
 * flushed: resolve once the transport has taken the message (its write callback), not as soon as
 * grpc-js queued it (up to 16 messages): a sender of large messages keeps few of them alive at once.
 */
export interface SendOptions {
  flushed?: boolean;
}

export function serverStream<Req, Res>(
  handler: (request: Req, ctx: CallContext, send: (message: Res, options?: SendOptions) => Promise<void>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const tracked = track(call as AnyCall, call.request);
    // Honour backpressure: wait for 'drain' when the transport buffer is full.
    const send = async (message: Res, options?: SendOptions): Promise<void> => {
      if (tracked.ctx.signal.aborted) throw tracked.ctx.signal.reason;
      if (options?.flushed) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(tracked.ctx.signal.reason as Error);
          tracked.ctx.signal.addEventListener('abort', onAbort, { once: true });
          call.write(message, (error?: Error | null) => {
            tracked.ctx.signal.removeEventListener('abort', onAbort);
            if (error) reject(error);
            else resolve();
          });
        });
        return;
      }
      if (call.write(message)) return;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          call.off('drain', onDrain);
          reject(tracked.ctx.signal.reason as Error);
        };
        const onDrain = (): void => {
          tracked.ctx.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        call.once('drain', onDrain);
        tracked.ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    };
    context.with(tracked.traceContext, () => handler(call.request, tracked.ctx, send)).then(
      () => {
        tracked.finish(undefined);
        call.end();
      },
      (error: unknown) => {
        const failure = tracked.finish(error)!;
        if (!call.cancelled) call.emit('error', failure.serviceError);
      },
    );
  };
}

export function clientStream<Req, Res>(
  handler: (requests: AsyncIterable<Req>, ctx: CallContext) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) => {
    const tracked = track(call as AnyCall, undefined);
    context.with(tracked.traceContext, () => handler(call as AsyncIterable<Req>, tracked.ctx)).then(
      (response) => {
        tracked.finish(undefined);
        callback(null, response);
      },
      (error: unknown) => callback(tracked.finish(error)!.serviceError),
    );
  };
}

export function bidiStream<Req, Res>(
  handler: (requests: AsyncIterable<Req>, ctx: CallContext, send: (message: Res) => void) => Promise<void>,
): handleBidiStreamingCall<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>) => {
    const tracked = track(call as AnyCall, undefined);
    context.with(tracked.traceContext, () => handler(call as AsyncIterable<Req>, tracked.ctx, (m) => void call.write(m))).then(
      () => {
        tracked.finish(undefined);
        call.end();
      },
      (error: unknown) => {
        const failure = tracked.finish(error)!;
        if (!call.cancelled) call.emit('error', failure.serviceError);
      },
    );
  };
}
