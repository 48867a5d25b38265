/**
 * Lets a build's VMs boot at most `limit` at once. A boot is CPU-bound (the guest's kernel and init;
 * all the more under TCG): two at once on a small host each take twice as long, so the first VM is
 * ready no sooner than the last. One at a time, the first VM runs its steps while the next boots.
 *
 * A free slot goes to the most urgent stage: the one with the most steps it can run on its own
 * (before it reads another stage), since that work is what the other boots then overlap. A stage
 * that may still boot is expected; a free slot waits for a more urgent expected stage rather than go
 * to a less urgent one that asked first. An expected stage must therefore ask, or withdraw, soon:
 * it withdraws before it waits for another stage, when it turns out not to boot, and when it ends.
 */

interface Waiting {
  readonly urgency: number;
  /** Set once the stage asks for its slot. */
  grant?: () => void;
}

export class BootGate {
  private booting = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly limit: number) {}

  /** Stage `stage` may boot soon; `urgency` is how many steps it can run before it reads another stage. */
  expect(stage: number, urgency: number): void {
    if (!this.waiting.has(stage)) this.waiting.set(stage, { urgency });
  }

  /** The stage will not ask for now (it waits for another stage, needs no VM, or ended). */
  withdraw(stage: number): void {
    const entry = this.waiting.get(stage);
    if (entry && !entry.grant) {
      this.waiting.delete(stage);
      this.admit();
    }
  }

  /** Runs `boot` once the stage has a slot; the slot is free again when `boot` settles. */
  async run<T>(stage: number, urgency: number, signal: AbortSignal, boot: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    const entry = this.waiting.get(stage) ?? { urgency };
    this.waiting.set(stage, entry);
    await new Promise<void>((resolve, reject) => {
      const abort = () => {
        if (this.waiting.get(stage) !== entry) return;
        this.waiting.delete(stage);
        reject(signal.reason);
        this.admit();
      };
      entry.grant = () => {
        signal.removeEventListener('abort', abort);
        resolve();
      };
      signal.addEventListener('abort', abort, { once: true });
      this.admit();
    });
    try {
      return await boot();
    } finally {
      this.booting -= 1;
      this.admit();
    }
  }

  private admit(): void {
    while (this.booting < Math.max(1, this.limit)) {
      let next: [number, Waiting] | undefined;
      for (const candidate of this.waiting) {
        if (!next || candidate[1].urgency > next[1].urgency || (candidate[1].urgency === next[1].urgency && candidate[0] < next[0])) next = candidate;
      }
      // the most urgent stage has not asked yet: the slot waits for it
      if (!next?.[1].grant) return;
      this.waiting.delete(next[0]);
      this.booting += 1;
      next[1].grant();
    }
  }
}
