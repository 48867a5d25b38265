/**
 * The event bus port. Subjects follow NATS conventions ("kindling.build.<id>.state"); patterns may use
 * "*" for one token and ">" for the rest. Payloads are binary-encoded kindling.events.v1 messages.
 */

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface EventBus {
  /** Whether history survives this process (JetStream) or lives only in memory. */
  readonly durable: boolean;
  publish(subject: string, data: Uint8Array): Promise<void>;
  /** Live messages from now on; handler errors are the handler's to catch. */
  subscribe(pattern: string, handler: (message: BusMessage) => void): Subscription;
  /** Every stored message matching pattern, oldest first, up to the moment of the call. */
  history(pattern: string, signal?: AbortSignal): AsyncIterable<BusMessage>;
  close(): Promise<void>;
}

/** NATS subject matching: "*" matches one token, a final ">" one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    const token = want[i]!;
    if (token === '>') return have.length > i;
    if (i >= have.length) return false;
    if (token !== '*' && token !== have[i]) return false;
  }
  return want.length === have.length;
}
