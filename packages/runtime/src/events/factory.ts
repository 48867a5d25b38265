import type { Logger } from '../logger.ts';
import type { EventBus } from './bus.ts';
import { InProcessEventBus } from './in-process.ts';
import { NatsEventBus } from './nats.ts';

/** NATS when a URL is configured, otherwise the in-process bus (single-process mode). */
export async function createEventBus(natsUrl: string | undefined, logger: Logger): Promise<EventBus> {
  if (natsUrl === undefined) return new InProcessEventBus();
  return NatsEventBus.connect(natsUrl, logger);
}
