// The ProvisionerService gRPC adapter: validates and converts, then calls the use cases.
import type {
  CloseSessionRequest,
  CloseSessionResponse,
  ExecRequest,
  ExecResponse,
  PutFilesRequest,
  PutFilesResponse,
  WaitReadyAttempt,
  WaitReadyRequest,
  WaitReadyResponse,
} from '@kindling/proto/gen/kindling/provisioner/v1/provisioner.ts';
import { serverStream, unary, type CallContext } from '@kindling/runtime';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Provisioner } from '../../domain/provisioner.ts';
import { toCopySources, toDuration, toExecStep, toExitStatus, toLogStream, toMs, toStagedTransferDisk, toTargetInput } from './proto-conversions.ts';

/** Output messages queued for the client before the SSH channel is paused. */
const MAX_QUEUED_OUTPUT = 16;

export function provisionerGrpcImplementation(provisioner: Provisioner): UntypedServiceImplementation {
  return {
    waitReady: unary<WaitReadyRequest, WaitReadyResponse>(async (request, ctx) => {
      const target = toTargetInput(request.target);
      warnIfInsecure(target.acceptAnyHostKey, ctx);
      const timeoutMs = toMs(request.timeout, 'timeout');
      const failedAttempts: WaitReadyAttempt[] = [];
      const result = await provisioner.waitReady(target, {
        ...(timeoutMs ? { timeoutMs } : {}),
        signal: ctx.signal,
        onAttempt: (attempt) => {
          ctx.log.info(
            { host: target.host, port: target.port, attempt: attempt.attempt, retryable: attempt.retryable, error: attempt.error?.message, nextDelayMs: attempt.nextDelayMs },
            attempt.error ? 'ssh connect attempt failed' : 'ssh ready',
          );
          if (attempt.error) {
            failedAttempts.push({
              attempt: attempt.attempt,
              time: attempt.at,
              error: attempt.error.message,
              ...(attempt.nextDelayMs !== undefined ? { retryAfter: toDuration(attempt.nextDelayMs) } : {}),
            });
          }
        },
      });
      return { attempts: result.attempts, elapsed: toDuration(result.elapsedMs), serverVersion: result.serverVersion ?? '', failedAttempts };
    }),

    exec: serverStream<ExecRequest, ExecResponse>(async (request, ctx, send) => {
      const target = toTargetInput(request.target);
      warnIfInsecure(target.acceptAnyHostKey, ctx);
      const step = toExecStep(request);
      const started = performance.now();
      // output arrives as callbacks: keep the messages in order, and past a few queued messages hand
      // back a promise so the SSH channel pauses until the client catches up
      let sending = Promise.resolve();
      let queued = 0;
      const outcome = await provisioner.exec(
        target,
        step,
        (output) => {
          queued++;
          sending = sending.then(() => send({ event: { $case: 'output', value: { stream: toLogStream(output.stream), data: output.data, time: output.at } } })).finally(() => queued--);
          sending.catch(() => {}); // a failed send surfaces at the await below, or the call is gone anyway
          return queued > MAX_QUEUED_OUTPUT ? sending : undefined;
        },
        ctx.signal,
      );
      await sending;
      ctx.log.info({ stepIndex: request.stepIndex, outcome }, 'step finished');
      await send({ event: { $case: 'exit', value: toExitStatus(outcome, performance.now() - started) } });
    }),

    putFiles: unary<PutFilesRequest, PutFilesResponse>(async (request, ctx) => {
      const target = toTargetInput(request.target);
      warnIfInsecure(target.acceptAnyHostKey, ctx);
      const summary = await provisioner.putFiles(
        target,
        {
          sources: toCopySources(request.sources, request.preserveOwnership),
          destination: request.destination,
          ...(request.workingDir ? { workingDir: request.workingDir } : {}),
          ...(request.chown ? { chown: request.chown } : {}),
          ...(request.chmod !== undefined ? { chmod: request.chmod } : {}),
          extractArchives: request.extractArchives,
          ...(request.transferDisk ? { transferDisk: toStagedTransferDisk(request.transferDisk) } : {}),
        },
        ctx.signal,
      );
      ctx.log.info({ contextId: request.contextId, stepIndex: request.stepIndex, ...summary }, 'files copied');
      return { ...summary, bytesWritten: String(summary.bytesWritten) };
    }),

    closeSession: unary<CloseSessionRequest, CloseSessionResponse>(async (request) => ({
      closed: await provisioner.closeSession(request.sessionId),
    })),
  };
}

function warnIfInsecure(insecure: boolean | undefined, ctx: CallContext): void {
  if (insecure) ctx.log.warn('host key verification is disabled for this target (insecure_ignore_host_key)');
}
