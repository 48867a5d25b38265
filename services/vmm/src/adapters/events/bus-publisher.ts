import { VmEvent } from '@kindling/proto/gen/kindling/events/v1/events.ts';
import type { EventBus } from '@kindling/runtime';
import type { VmEventPublisher, VmStateEvent } from '../../ports/vm-events.ts';
import { toProtoEvent } from '../grpc/convert.ts';

/** NATS subject tokens cannot hold dots or wildcards. */
const token = (value: string): string => value.replace(/[.*>\s]/g, '_');

/** Publishes VM state events as binary kindling.events.v1.VmEvent on kindling.vm.<host>.<vm>.state. */
export class BusVmEventPublisher implements VmEventPublisher {
  constructor(private readonly bus: EventBus) {}

  async publish(event: VmStateEvent): Promise<void> {
    const subject = `kindling.vm.${token(event.host)}.${token(event.vmId)}.state`;
    await this.bus.publish(subject, VmEvent.encode(toProtoEvent(event)).finish());
  }
}
