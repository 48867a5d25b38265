// One worker thread, started on first use and again after it fails: replies go to onReply, and when
// the thread errors or exits onFailure fails whatever still waits on it. Shared by the adapters that
// move CPU work (sha256, file reads) off the event loop.
import { Worker } from 'node:worker_threads';

export interface WorkerChannelOptions<Reply> {
  /** Plain CommonJS, run with eval so the worker needs no TypeScript loader. */
  source: string;
  /** The thread's name, as diagnostics show it. */
  name: string;
  onReply(reply: Reply): void;
  /** Called on the thread's 'error' and on its 'exit' (also after close()): reject every request still pending. */
  onFailure(error: Error): void;
}

export class WorkerChannel<Reply> {
  private worker: Worker | undefined;

  constructor(private readonly options: WorkerChannelOptions<Reply>) {}

  /** The running thread; a request keeps the one it was sent to, so a replacement never sees its follow-ups. */
  current(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.options.source, { eval: true, name: this.options.name });
    // No unref: the 'message' listener below refs the worker's port again, and a caller awaiting a
    // reply needs the process alive. close() ends the thread (the service does at shutdown).
    worker.on('message', (reply: Reply) => this.options.onReply(reply));
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      this.options.onFailure(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}
