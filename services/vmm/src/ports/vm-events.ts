import type { VmState } from '../domain/vm.ts';

/** A VM state change, published as kindling.vm.<host>.<vm>.state. */
export interface VmStateEvent {
  readonly host: string;
  readonly vmId: string;
  readonly sequence: number;
  readonly time: Date;
  readonly state: VmState;
  readonly previousState: VmState | undefined;
  readonly reason: string;
  readonly buildId: string;
}

export interface VmEventPublisher {
  publish(event: VmStateEvent): Promise<void>;
}
