/**
 * W3C Trace Context over gRPC metadata, through the OpenTelemetry API only.
 *
 * Servers (call.ts) extract `traceparent`/`tracestate` from the incoming metadata, start a SERVER span
 * under it and run the handler with that span active (AsyncLocalStorage). Clients made with
 * createServiceClient carry traceInterceptor, which starts a CLIENT span under the active context and
 * injects it into the outgoing metadata. So a nested call keeps the trace id and names a new parent.
 *
 * Without an OpenTelemetry SDK the API's tracer is a no-op that would hand back the parent's ids (or
 * invalid ones): startSpan then makes the ids itself (random, W3C sizes) on a non-recording span, so
 * trace ids are still there for logs and propagation. A process that registers an SDK before the
 * services start (`node --import ./otel.mjs …`) gets real, exported spans from the same code: its
 * context manager and propagator win, installTracing only fills in what is still unregistered.
 */
import { randomBytes } from 'node:crypto';
import { InterceptingCall, ListenerBuilder, type Interceptor, type Metadata, type StatusObject } from '@grpc/grpc-js';
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const tracerName = '@kindling/runtime';
let installed = false;

/**
 * Registers an AsyncLocalStorage context manager and the W3C trace-context propagator with the
 * OpenTelemetry API, unless something (an SDK) registered its own first. Idempotent; the gRPC server
 * and client helpers call it.
 */
export function installTracing(): void {
  if (installed) return;
  installed = true;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

function randomHex(bytes: number): string {
  for (;;) {
    const hex = randomBytes(bytes).toString('hex');
    if (!/^0+$/.test(hex)) return hex;
  }
}

/**
 * Starts a span under parent (default: the active context) with the API's tracer. Where that tracer is
 * the no-op one (no SDK registered), the span gets fresh ids of its own: the parent's trace id and a new
 * span id, or a new trace id when there is no valid parent.
 */
export function startSpan(name: string, options: SpanOptions = {}, parent: Context = context.active()): Span {
  installTracing();
  const span = trace.getTracer(tracerName).startSpan(name, options, parent);
  const parentContext = options.root ? undefined : trace.getSpanContext(parent);
  const own = span.spanContext();
  const noop = !span.isRecording() && (!isSpanContextValid(own) || (parentContext !== undefined && own.spanId === parentContext.spanId));
  if (!noop) return span;
  const valid = parentContext !== undefined && isSpanContextValid(parentContext);
  return trace.wrapSpanContext({
    traceId: valid ? parentContext.traceId : randomHex(16),
    spanId: randomHex(8),
    // a new root is not sampled: nothing here records it
    traceFlags: valid ? parentContext.traceFlags : TraceFlags.NONE,
    ...(valid && parentContext.traceState ? { traceState: parentContext.traceState } : {}),
  });
}

/** `{ trace_id, span_id }` of a span, for log lines. */
export function traceFields(span: Span): { trace_id: string; span_id: string } {
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** The trace id of the active span, if there is one. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getSpanContext(context.active());
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get(carrier, key) {
    const values = carrier.get(key).filter((value): value is string => typeof value === 'string');
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The context a caller sent in traceparent/tracestate (the root context when it sent none or an invalid one). */
export function extractTraceContext(metadata: Metadata): Context {
  installTracing();
  // from the root: what an incoming call belongs to is what its caller sent, not what this process runs
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** Writes traceparent (and tracestate) of ctx's span into metadata. */
export function injectTraceContext(ctx: Context, metadata: Metadata): void {
  installTracing();
  propagation.inject(ctx, metadata, metadataSetter);
}

/** Splits "/kindling.vmm.v1.VmmService/CreateVm" into its service and method. */
export function rpcAttributes(path: string): { 'rpc.system': string; 'rpc.service': string; 'rpc.method': string } {
  const [, service = '', method = ''] = /^\/([^/]*)\/(.*)$/.exec(path) ?? [];
  return { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method };
}

/** Ends an RPC span with its gRPC status. */
export function endRpcSpan(span: Span, code: number, message?: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
  span.end();
}

/**
 * A grpc-js client interceptor: a CLIENT span per call, child of the context active when the call is
 * made, sent as traceparent/tracestate; the span ends with the call's status.
 */
export const traceInterceptor: Interceptor = (options, nextCall) => {
  const path = options.method_definition.path;
  const span = startSpan(path, { kind: SpanKind.CLIENT, attributes: rpcAttributes(path) });
  const spanContext = trace.setSpan(context.active(), span);
  return new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      injectTraceContext(spanContext, metadata);
      next(
        metadata,
        new ListenerBuilder()
          .withOnReceiveStatus((status: StatusObject, nextStatus: (status: StatusObject) => void) => {
            endRpcSpan(span, status.code, status.details);
            nextStatus(status);
          })
          .build(),
      );
    },
  });
};

/** A span that work running later (after the RPC that started it has answered) re-enters. */
export interface TraceScope {
  readonly traceId: string;
  readonly spanId: string;
  /** Runs fn with the span active: calls fn makes through createServiceClient clients carry its trace. */
  run<T>(fn: () => T): T;
  /** Ends the span, failed when given an error message. */
  end(errorMessage?: string): void;
}

/**
 * Starts a span under the active context (e.g. a CreateBuild handler's SERVER span, so under the
 * caller's traceparent when it sent one) and captures it, to carry it explicitly into work that runs
 * on after the handler.
 */
export function startTraceScope(name: string, attributes: Record<string, string> = {}): TraceScope {
  const span = startSpan(name, { kind: SpanKind.INTERNAL, attributes });
  const scoped = trace.setSpan(context.active(), span);
  const { traceId, spanId } = span.spanContext();
  return {
    traceId,
    spanId,
    run: (fn) => context.with(scoped, fn),
    end(errorMessage) {
      if (errorMessage !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage });
      span.end();
    },
  };
}
