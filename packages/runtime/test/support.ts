/**
 * Shared by the runtime tests: a BuildService server on 127.0.0.1:0 with a few real handlers (the rest
 * UNIMPLEMENTED), and a pino logger whose JSON lines the test can read back.
 */
import { Writable } from 'node:stream';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { BuildServiceService } from '@kindling/proto/gen/kindling/planner/v1/planner.ts';
import { pino } from 'pino';
import { createLogger, startGrpcService, unimplementedMethods, type Logger, type RunningGrpcService } from '../src/index.ts';

export function startBuildService(handlers: UntypedServiceImplementation = {}, logger: Logger = createLogger('test', 'silent')): Promise<RunningGrpcService> {
  return startGrpcService({
    name: 'test',
    host: '127.0.0.1',
    port: 0,
    logger,
    services: [
      {
        name: 'kindling.planner.v1.BuildService',
        definition: BuildServiceService,
        implementation: { ...unimplementedMethods(BuildServiceService, 'the test issue'), ...handlers },
      },
    ],
  });
}

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line logged so far, parsed. */
  readonly lines: Array<Record<string, unknown> & { msg: string }>;
  readonly text: () => string;
}

export function captureLog(base: Record<string, string> = {}): CapturedLog {
  const raw: string[] = [];
  const lines: CapturedLog['lines'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as CapturedLog['lines'][number]);
      }
      done();
    },
  });
  return { logger: pino({ level: 'info', base }, sink), lines, text: () => raw.join('\n') };
}
